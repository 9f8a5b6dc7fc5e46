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

    The tests call it so that a model that cannot build fails CI, not a function's first request;
    the local stack calls it before its trigger threads start, so a request never pays for a build
    (the layer's pydantic>=2.14 makes concurrent first builds safe: pydantic#13438).
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
