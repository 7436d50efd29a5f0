"""The capability registry is the one list: names, message types and job kinds are unique, every group
is served, and every routes module mounts what it declares."""

from __future__ import annotations

import subprocess
import sys

import pytest
from fastapi import APIRouter

from stratus import capabilities
from stratus.capabilities import CAPABILITIES, GROUPS


def test_names_messages_and_kinds_are_unique() -> None:
    names = [c.name for c in CAPABILITIES]
    messages = [m for c in CAPABILITIES for m, _ in c.messages]
    kinds = [k.name for c in CAPABILITIES for k in c.job_kinds]
    assert len(set(names)) == len(names)
    assert len(set(messages)) == len(messages)
    assert len(set(kinds)) == len(kinds) and set(kinds) == set(capabilities.job_kinds().names())


def test_every_group_serves_routes_and_every_routes_module_mounts_routers() -> None:
    assert {c.group for c in CAPABILITIES} == set(GROUPS)
    for group in GROUPS:
        routers = capabilities.routes_of(capabilities.in_groups([group]))
        assert routers and all(isinstance(r, APIRouter) for r in routers), group


def test_reading_the_registry_imports_no_router_and_no_heavy_library() -> None:
    """The worker and the event handlers read job kinds from the registry: that must stay light."""
    probe = (
        "import sys; import stratus.capabilities as c; c.job_kinds(); "
        "bad = [m for m in sys.modules if m.split('.')[0] in ('torch', 'transformers', 'fastapi') "
        "or m.endswith('.routes')]; print(','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_unknown_groups_are_refused() -> None:
    with pytest.raises(ValueError, match="nope"):
        capabilities.in_groups(["nope"])
