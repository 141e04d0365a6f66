"""API tokens: self-describing, hashed, parsed without a database."""

from __future__ import annotations

import pytest

from saas.tokens import bearer_token, token_generate, token_hash, token_home_region, token_is_well_formed


def test_generated_tokens_name_their_region_and_store_only_a_hash():
    new = token_generate(region="ap-south-1")
    assert new.raw.startswith("sk_ap-south-1_") and len(new.raw.rsplit("_", 1)[1]) == 40
    assert token_home_region(new.raw) == "ap-south-1"
    assert token_is_well_formed(new.raw)
    assert new.token_hash == token_hash(new.raw) != new.raw
    assert new.raw.startswith(new.prefix) and len(new.prefix) < len(new.raw) - 20
    assert token_generate(region="ap-south-1").raw != new.raw


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "sk_",
        "sk__abc",
        "pk_eu-west-1_abc",
        "sk_EU-west-1_abc",
        "sk_evil.example.com_x",
        "sk_eu-west-1_a-b",
        "sk_eu-west-1_",
    ],
)
def test_malformed_tokens_name_no_region(raw):
    assert token_home_region(raw) is None
    assert not token_is_well_formed(raw)


def test_bearer_header_parsing():
    assert bearer_token("Bearer sk_x") == "sk_x"
    assert bearer_token("bearer  sk_x ") == "sk_x"
    assert bearer_token("Basic abc") is None
    assert bearer_token("Bearer ") is None
    assert bearer_token(None) is None
