"""The base of batchplane's pydantic models: each builds its validator when first used."""

from pydantic import BaseModel, ConfigDict


class Model(BaseModel):
    """A pydantic model that builds its validator and serializer at its first use, not at import.

    A function pays only for the models it uses on their own: most are used only nested (in a Job,
    a policy, an event) or not at all by a given function. Per function this takes 10-30 ms off the
    import and leaves the first invocation as it was (bench/cold_start.py, bench/first_invocation.py).
    """

    model_config = ConfigDict(defer_build=True)


def build_all() -> int:
    """Builds every model defined so far; returns how many there are.

    For a process that runs several functions on threads (the local stack): before pydantic 2.14
    two threads' first uses of one deferred model could race (pydantic#13438). Lambda runs one
    invocation at a time per process, and its layer gets a pydantic with the fix.
    """
    models: list[type[BaseModel]] = []
    pending: list[type[BaseModel]] = [Model]
    while pending:
        cls = pending.pop()
        pending.extend(cls.__subclasses__())
        if cls is not Model:
            cls.model_rebuild()
            models.append(cls)
    return len(models)
