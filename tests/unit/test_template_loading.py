"""template.yaml is parsed once per edit, with libyaml when PyYAML has it; every reader gets a copy."""

from __future__ import annotations

import os
from pathlib import Path

import yaml

from batchplane_tools.local import template as template_module
from batchplane_tools.local.template import load_template
from tests.support import TEMPLATE


class _PurePythonCfnLoader(yaml.SafeLoader):
    """The loader as it was before libyaml: the pure-Python parser with the same tag constructor."""


_PurePythonCfnLoader.add_multi_constructor("!", template_module._construct_tag)


def test_the_template_reads_the_same_as_with_the_pure_python_parser() -> None:
    # Given template.yaml, every CloudFormation short form in it (!Ref, !Sub, !GetAtt, !If, ...)
    text = TEMPLATE.read_text(encoding="utf-8")

    # When it is loaded as the stack and the tests load it
    loaded = load_template(TEMPLATE)

    # Then it is the same data the pure-Python parser makes of it
    assert loaded == yaml.load(text, Loader=_PurePythonCfnLoader)
    assert loaded["Resources"]["JobsTable"]["Type"] == "AWS::DynamoDB::Table"


def test_a_reader_that_edits_its_template_changes_no_one_elses() -> None:
    # Given one reader's template, edited as the local stack and tests edit theirs
    mine = load_template(TEMPLATE)
    mine["Resources"]["JobsTable"]["Properties"]["TableName"] = "edited"
    mine["Parameters"].clear()

    # When the template is read again
    theirs = load_template(TEMPLATE)

    # Then that reader sees the file as it is
    assert theirs["Parameters"]
    assert theirs["Resources"]["JobsTable"]["Properties"].get("TableName") != "edited"


def test_a_template_edited_on_disk_is_read_again(tmp_path: Path) -> None:
    # Given a template read once
    path = tmp_path / "template.yaml"
    path.write_text("Resources:\n  Queue:\n    Type: AWS::SQS::Queue\n", encoding="utf-8")
    assert load_template(path)["Resources"] == {"Queue": {"Type": "AWS::SQS::Queue"}}
    first = path.stat()

    # When it is rewritten in place with as many bytes, within its clock's tick (a coarse file system)
    path.write_text("Resources:\n  Topic:\n    Type: AWS::SNS::Topic\n", encoding="utf-8")
    assert path.stat().st_size == first.st_size
    os.utime(path, ns=(first.st_atime_ns, first.st_mtime_ns))

    # Then the next read has the new resources
    assert load_template(path)["Resources"] == {"Topic": {"Type": "AWS::SNS::Topic"}}
