"""docs/spec/tokens.md and the code say the same thing; stored tokens from the spec's format still verify."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from strongroom.auth.iam import IamPublicKey, IamVerifier, InMemoryRevocationList, attenuate
from strongroom.auth.iam.policy import AUTHORIZER_CODE, OPERATIONS, SELF_SERVICE_PATHS
from strongroom.errors import PermissionDenied
from tests.auth.iam.conftest import request

ROOT = Path(__file__).resolve().parents[3]
SPEC = (ROOT / "docs" / "spec" / "tokens.md").read_text()
VECTORS = json.loads((Path(__file__).parent / "vectors.json").read_text())


def test_authorizer_code_is_the_spec_text() -> None:
    section = SPEC[SPEC.index("## 4. The authorizer"):SPEC.index("### Administrator and User")]
    block = re.search(r"```datalog\n(.*?)```", section, re.DOTALL)
    assert block is not None
    assert block.group(1) == AUTHORIZER_CODE


def test_spec_names_every_operation_and_self_service_path() -> None:
    for op in OPERATIONS:
        assert f"`{op}`" in SPEC
    for path in SELF_SERVICE_PATHS:
        assert path in SPEC


@pytest.mark.parametrize("case", VECTORS["cases"], ids=[c["name"] for c in VECTORS["cases"]])
def test_vectors(case: dict[str, object]) -> None:
    """Tokens stored in a file (made once with a throwaway key) keep their meaning across library versions."""
    key = IamPublicKey.parse(VECTORS["public_key"], key_id=VECTORS["key_id"])
    verifier = IamVerifier([key], InMemoryRevocationList())
    token = str(case["token"])
    facts = verifier.verify(token).facts
    assert (facts.tenant, facts.role.value, facts.expires_at) == (case["tenant"], case["role"], case["expires_at"])
    for resource, operation, mount, now, expected in case["requests"]:  # type: ignore[attr-defined]
        req = request(resource, operation, tuple(mount), now=now)
        if expected:
            verifier.authorize(token, req)
        else:
            with pytest.raises(PermissionDenied):
                verifier.authorize(token, req)
    # A stored token can still be attenuated with the published key.
    attenuate(token, key, operations=["read"])
