"""The token patterns are detect-secrets' own, and what its plugins flag we mask."""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import pytest

from provlink.config import DEFAULT_SECRET_KEY_PATTERNS
from provlink.events.redact import Redactor
from provlink.events.secret_shapes import DETECT_SECRETS, IGNORECASE_PLUGINS, PRIVATE_KEY_HEADERS

PLUGIN_MODULES = {
    "AWSKeyDetector": "aws", "AzureStorageKeyDetector": "azure_storage_key",
    "DiscordBotTokenDetector": "discord", "GitHubTokenDetector": "github_token",
    "GitLabTokenDetector": "gitlab_token", "JwtTokenDetector": "jwt",
    "MailchimpDetector": "mailchimp", "OpenAIDetector": "openai",
    "PypiTokenDetector": "pypi_token", "SendGridDetector": "sendgrid", "SlackDetector": "slack",
    "SquareOAuthDetector": "square_oauth", "StripeDetector": "stripe",
    "TelegramBotTokenDetector": "telegram_token", "TwilioKeyDetector": "twilio",
}
CORPUS = json.loads((Path(__file__).parent / "redaction_corpus.json").read_text())


def plugin(name: str):
    module = importlib.import_module(f"detect_secrets.plugins.{PLUGIN_MODULES[name]}")
    return getattr(module, name)


@pytest.mark.parametrize("name", sorted(DETECT_SECRETS))
def test_patterns_are_the_installed_plugins_own(name: str) -> None:
    """Copied for import cost, pinned here: an upgraded detect-secrets fails this test."""
    denylist = plugin(name).denylist
    ours = DETECT_SECRETS[name]
    if name == "AWSKeyDetector":
        denylist = denylist[:1]  # the keyword-context pattern is left to the key rules
    assert [p.pattern for p in denylist] == list(ours)
    for i, pattern in enumerate(denylist):
        ignorecase = name in IGNORECASE_PLUGINS and i == 0
        assert bool(pattern.flags & 2) == ignorecase or name == "SlackDetector"


def test_private_key_headers_are_the_plugins_own() -> None:
    from detect_secrets.plugins.private_key import PrivateKeyDetector

    assert [p.pattern for p in PrivateKeyDetector.denylist] == list(PRIVATE_KEY_HEADERS)


def test_whatever_the_regex_plugins_match_in_the_corpus_is_masked() -> None:
    """detect-secrets as an oracle: every match of its regex plugins' patterns (the whole
    match, not only the group ``analyze_line`` reports) is gone from our redaction."""
    patterns = [p for name in DETECT_SECRETS for p in plugin(name).denylist
                if not (name == "AWSKeyDetector" and p.groups)]
    redactor = Redactor(DEFAULT_SECRET_KEY_PATTERNS, include_environment=False)
    checked = 0
    for case in CORPUS["secrets"]:
        out = redactor.redact_text(case["text"])
        for pattern in patterns:
            for match in pattern.finditer(case["text"]):
                checked += 1
                assert match.group() not in out, (case["kind"], match.group())
    assert checked >= 30
