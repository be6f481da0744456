"""Secret shapes: credentials recognised in free text without knowing their value.

Two families, each a precompiled regex run only when a cheap substring test says it can
match (most strings of an event are names, numbers and paths that no pass looks at twice):

- **Token formats** (AWS keys, GitHub/GitLab/Slack/Stripe/... tokens, JWTs, PEM private
  keys). The patterns are the denylists of the regex-based plugins of ``detect-secrets``
  1.5, copied here verbatim and pinned to the installed plugins by
  ``tests/unit/test_secret_shapes.py``: importing ``detect_secrets`` costs 100-300 ms (it
  loads its scanner, filters and settings), which every task process would pay on its first
  capture. :data:`SUPPLEMENT` adds only formats those plugins lack (Google, Hugging Face,
  Databricks, fine-grained GitHub, ...). Keyword and entropy plugins are left out: they flag
  SHA-256 digests, UUIDs and git commits, which lineage is full of.
- **Credentials in context**: ``key=value`` / ``"key": "value"`` / ``--key value`` pairs whose
  key looks secret, ``["--password", "x"]`` written as text, ``Authorization: Bearer ...``,
  URL passwords (which may contain ``/`` or ``@``) and tokens used as the URL user,
  ``mysql -pX``, ``curl -u user:pw``, SQL ``PASSWORD '...'`` / ``IDENTIFIED BY`` / Redshift
  ``CREDENTIALS``, Oracle ``user/pw@db``. Masking keeps the key, quotes and URL structure.
"""

from __future__ import annotations

import re
from collections.abc import Callable

MASK = "***"

# detect-secrets 1.5 ``RegexBasedDetector.denylist`` patterns, by plugin class (verbatim).
# AWSKeyDetector's second pattern (a 40-char secret near the word "aws") is left to the key
# rules below; NpmDetector's ``//.+/:_authToken=`` is quadratic on long lines and
# ``_authToken=`` is a secret key anyway; ArtifactoryDetector's patterns consume their
# delimiters and flag upper-case identifiers (``APDEF12345678``).
DETECT_SECRETS: dict[str, tuple[str, ...]] = {
    "AWSKeyDetector": (r"(?:A3T[A-Z0-9]|ABIA|ACCA|AKIA|ASIA)[0-9A-Z]{16}",),
    "AzureStorageKeyDetector": (r"AccountKey=[a-zA-Z0-9+\/=]{88}",),
    "DiscordBotTokenDetector": (
        r"[MNO][a-zA-Z\d_-]{23,25}\.[a-zA-Z\d_-]{6}\.[a-zA-Z\d_-]{27}",),
    "GitHubTokenDetector": (r"(ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9_]{36}",),
    "GitLabTokenDetector": (
        r"(glpat|gldt|glft|glsoat|glrt)-[A-Za-z0-9_\-]{20,50}(?!\w)",
        r"GR1348941[A-Za-z0-9_\-]{20,50}(?!\w)",
        r"glcbt-([0-9a-fA-F]{2}_)?[A-Za-z0-9_\-]{20,50}(?!\w)",
        r"glimt-[A-Za-z0-9_\-]{25}(?!\w)",
        r"glptt-[A-Za-z0-9_\-]{40}(?!\w)",
        r"glagent-[A-Za-z0-9_\-]{50,1024}(?!\w)",
        r"gloas-[A-Za-z0-9_\-]{64}(?!\w)",
    ),
    "JwtTokenDetector": (r"eyJ[A-Za-z0-9-_=]+\.[A-Za-z0-9-_=]+\.?[A-Za-z0-9-_.+/=]*?",),
    "MailchimpDetector": (r"[0-9a-z]{32}-us[0-9]{1,2}",),
    "OpenAIDetector": (r"sk-[A-Za-z0-9-_]*[A-Za-z0-9]{20}T3BlbkFJ[A-Za-z0-9]{20}",),
    "PypiTokenDetector": (r"pypi-AgEIcHlwaS5vcmc[A-Za-z0-9-_]{70,}",
                          r"pypi-AgENdGVzdC5weXBpLm9yZw[A-Za-z0-9-_]{70,}"),
    "SendGridDetector": (r"SG\.[a-zA-Z0-9_-]{22}\.[a-zA-Z0-9_-]{43}",),
    "SlackDetector": (
        r"xox(?:a|b|p|o|s|r)-(?:\d+-)+[a-z0-9]+",  # re.IGNORECASE in the plugin
        r"https://hooks\.slack\.com/services/T[a-zA-Z0-9_]+/B[a-zA-Z0-9_]+/[a-zA-Z0-9_]+",
    ),
    "SquareOAuthDetector": (r"sq0csp-[0-9A-Za-z\\\-_]{43}",),
    "StripeDetector": (r"(?:r|s)k_live_[0-9a-zA-Z]{24}",),
    "TelegramBotTokenDetector": (r"\d{8,10}:[0-9A-Za-z_-]{35}",),
    "TwilioKeyDetector": (r"AC[a-z0-9]{32}", r"SK[a-z0-9]{32}"),
}
IGNORECASE_PLUGINS = frozenset({"SlackDetector"})

# detect-secrets' PrivateKeyDetector headers; the whole block (to its END line) is masked.
PRIVATE_KEY_HEADERS: tuple[str, ...] = (
    "BEGIN DSA PRIVATE KEY", "BEGIN EC PRIVATE KEY", "BEGIN OPENSSH PRIVATE KEY",
    "BEGIN PGP PRIVATE KEY BLOCK", "BEGIN PRIVATE KEY", "BEGIN RSA PRIVATE KEY",
    "BEGIN SSH2 ENCRYPTED PRIVATE KEY", "PuTTY-User-Key-File-2",
)

# Formats detect-secrets 1.5 has no plugin for (each a vendor-documented prefix), with the
# substrings any match contains.
SUPPLEMENT: tuple[tuple[str, tuple[str, ...]], ...] = (
    (r"github_pat_[A-Za-z0-9_]{22,}", ("github_pat_",)),           # GitHub fine-grained PAT
    (r"AIza[0-9A-Za-z_\-]{35}", ("AIza",)),                        # Google API key
    (r"ya29\.[0-9A-Za-z_\-]{20,}", ("ya29.",)),                    # Google OAuth token
    (r"GOCSPX-[0-9A-Za-z_\-]{24,}", ("GOCSPX-",)),                  # Google client secret
    (r"hf_[A-Za-z0-9]{30,}", ("hf_",)),                             # Hugging Face
    (r"sk-ant-(?:api|admin)\d\d-[A-Za-z0-9_\-]{20,}", ("sk-",)),  # Anthropic
    (r"sk-(?:proj|svcacct|admin)-[A-Za-z0-9_\-]{20,}", ("sk-",)),   # OpenAI project keys
    (r"dapi[0-9a-f]{32}(?:-\d+)?", ("dapi",)),                      # Databricks
    (r"shp(?:at|ss|ca|pa)_[0-9a-fA-F]{32}", ("shp",)),              # Shopify
    (r"do[por]_v1_[0-9a-f]{64}", ("_v1_",)),                        # DigitalOcean
    (r"hv[sbr]\.[A-Za-z0-9_\-]{24,}", ("hvs.", "hvb.", "hvr.")),    # HashiCorp Vault
    (r"[A-Za-z0-9]{14}\.atlasv1\.[A-Za-z0-9_\-]{60,}", (".atlasv1.",)),  # Terraform Cloud
    (r"PMAK-[0-9a-f]{24}-[0-9a-f]{34}", ("PMAK-",)),                # Postman
    (r"glsa_[A-Za-z0-9]{32}_[0-9a-f]{8}", ("glsa_",)),              # Grafana service account
    (r"glc_[A-Za-z0-9+/]{32,}={0,2}", ("glc_",)),                   # Grafana Cloud
    (r"npm_[A-Za-z0-9]{36}", ("npm_",)),                            # npm
    (r"xapp-\d-[A-Z0-9]+-\d+-[a-z0-9]+", ("xapp-",)),               # Slack app-level token
    (r"ATATT3[A-Za-z0-9_\-=]{50,}", ("ATATT3",)),                   # Atlassian API token
    (r"lin_api_[A-Za-z0-9]{40}", ("lin_api_",)),                    # Linear
    (r"AGE-SECRET-KEY-1[0-9A-Z]{58}", ("AGE-SECRET-KEY-",)),         # age
    (r"dp\.(?:st|sa|ct|scim|audit)\.(?:[a-z0-9_\-]{2,35}\.)?[A-Za-z0-9]{40,}", ("dp.",)),
    (r"sq0atp-[0-9A-Za-z_\-]{22}", ("sq0atp-",)),                   # Square access token
    (r"key-[0-9a-f]{32}", ("key-",)),                               # Mailgun
    (r"LTAI[A-Za-z0-9]{16,20}", ("LTAI",)),                         # Alibaba Cloud
    (r"rk_test_[0-9a-zA-Z]{24,}|sk_test_[0-9a-zA-Z]{24,}", ("k_test_",)),  # Stripe test keys
)

# Substrings every match of a detect-secrets pattern contains: a pattern runs only on text
# holding one (one regex per format is far cheaper than one alternation of all of them,
# which Python's engine tries at every position). None: always run (cheap, rare anchors).
NEEDLES: dict[str, tuple[tuple[str, ...], ...]] = {
    "AWSKeyDetector": (("A3T", "ABIA", "ACCA", "AKIA", "ASIA"),),
    "AzureStorageKeyDetector": (("AccountKey=",),),
    "DiscordBotTokenDetector": ((".",),),
    "GitHubTokenDetector": (("ghp_", "gho_", "ghu_", "ghs_", "ghr_"),),
    "GitLabTokenDetector": (("glpat-", "gldt-", "glft-", "glsoat-", "glrt-"), ("GR1348941",),
                            ("glcbt-",), ("glimt-",), ("glptt-",), ("glagent-",), ("gloas-",)),
    "JwtTokenDetector": (("eyJ",),),
    "MailchimpDetector": (("-us",),),
    "OpenAIDetector": (("T3BlbkFJ",),),
    "PypiTokenDetector": (("pypi-",), ("pypi-",)),
    "SendGridDetector": (("SG.",),),
    "SlackDetector": (("xox", "XOX", "Xox"), ("hooks.slack.com",)),
    "SquareOAuthDetector": (("sq0csp-",),),
    "StripeDetector": (("k_live_",),),
    "TelegramBotTokenDetector": ((":",),),
    "TwilioKeyDetector": (("AC",), ("SK",)),
}

_TOKEN_CHARS = r"[A-Za-z0-9_\-]*"  # a match extends over the rest of its token


def _token_families() -> tuple[tuple[tuple[str, ...], re.Pattern[str], bool], ...]:
    """(needles, regex, is_discord) per token format."""
    # No token starts in the middle of a word ('xAKIA...', long hex ids stay intact); a
    # Telegram token starts with digits, so only a digit before it disqualifies it
    # ('/bot123456789:AA...' is how its API URLs carry it).
    word, digit = r"(?<![A-Za-z0-9])", r"(?<![0-9])"
    families = []
    for plugin, patterns in DETECT_SECRETS.items():
        for i, pattern in enumerate(patterns):
            flags = "(?i:" if plugin in IGNORECASE_PLUGINS and i == 0 else "(?:"
            start = digit if plugin == "TelegramBotTokenDetector" else word
            families.append((NEEDLES[plugin][i],
                             re.compile(f"{start}{flags}{pattern}){_TOKEN_CHARS}"),
                             plugin == "DiscordBotTokenDetector"))
    families += [(needles, re.compile(f"{word}(?:{p}){_TOKEN_CHARS}"), False)
                 for p, needles in SUPPLEMENT]
    return tuple(families)


_TOKEN_FAMILIES = _token_families()
# Families whose needle is one common character run on length alone; for the rest, one
# search for any needle decides whether a string needs the per-family loop at all.
_COMMON_NEEDLES = frozenset({".", ":"})
_MIN_LEN = {".": 59, ":": 44}  # the shortest Discord / Telegram token
_COMMON_FAMILIES = tuple((f[0][0], f[1], f[2]) for f in _TOKEN_FAMILIES
                        if f[0][0] in _COMMON_NEEDLES)
_RARE_FAMILIES = tuple(f for f in _TOKEN_FAMILIES if f[0][0] not in _COMMON_NEEDLES)
_ANY_NEEDLE = re.compile("|".join(
    re.escape(n) for n in sorted({n for f in _TOKEN_FAMILIES for n in f[0]} - _COMMON_NEEDLES,
                                 key=len, reverse=True)))
_PRIVATE_KEY = re.compile(
    "-----(?:" + "|".join(h for h in PRIVATE_KEY_HEADERS if h.startswith("BEGIN"))
    + "|BEGIN ENCRYPTED PRIVATE KEY)-----[\\s\\S]*?(?:-----END[A-Z0-9 ]*-----|\\Z)"
    r"|PuTTY-User-Key-File-[23]:[\s\S]*?(?:Private-MAC: *[0-9a-fA-F]+|\Z)")

# scheme://user:password@host — the password may hold '/' and '@': it ends at the last '@'
# that a host[:port] follows (then '/', '?', '#', a quote, a space or the end of the text).
HOST = r"[A-Za-z0-9._\-\[\]%]+(?::\d{0,5})?"
_URL_PASSWORD = re.compile(
    r"(?P<pre>[A-Za-z][A-Za-z0-9+.\-]*://(?P<user>[^\s:/?#@\"'<>]*):)"
    r"(?P<pw>[^\s\"'<>?#,;]{1,512})@(?=" + HOST + r"(?:[/?#\s\"'<>),;\]]|$))")
# scheme://TOKEN@host — a long opaque user is a token (git remotes, `https://ghp_...@`)
_URL_TOKEN_USER = re.compile(
    r"(?P<pre>[A-Za-z][A-Za-z0-9+.\-]*://)(?P<user>[A-Za-z0-9_\-.~%]{16,})@")
# Azure's abfs[s]://container@account...: the part before '@' names a container
CONTAINER_AT_ACCOUNT_SCHEMES = ("abfs", "wasb")
PORT_THEN_PATH = re.compile(r"\d{1,5}(?:/|$)")

_QUOTED = r"\"(?:[^\"\\\n]|\\.){0,4096}\"|'(?:[^'\\\n]|\\.){0,4096}'"
# key = value, "key": "value", key: value, key => value (the key decides). The value is
# only looked at, not consumed, so pairs inside a non-secret pair's value are still seen
# ('https://h/x?token=...', '--from-literal=password=...').
_KEY_VALUE = re.compile(
    r"(?P<kq>[\"']?)(?P<key>[A-Za-z_$@][\w.\-$@]{0,80})(?P=kq)[ \t]*(?:=>|[:=])[ \t]*"
    r"(?=(?P<val>" + _QUOTED
    + r"|(?:(?i:bearer|basic|token|digest|negotiate)[ \t]+)?[^\s,;&'\"{}\[\]()<>]{1,4096}))")
# --key value (the --key=value form is a key=value pair)
_FLAG_VALUE = re.compile(
    r"(?<![\w\-])--?(?P<key>[A-Za-z][\w\-]{1,60})[ \t]+(?P<val>" + _QUOTED
    + r"|[^\s\"'\-][^\s\"']*)")
# ['--password', 'x'] / ["--password", "x"] as text (Python repr, command lines in logs)
_FLAG_LIST = re.compile(
    r"(?P<q>[\"'])--?(?P<key>[A-Za-z][\w\-]{1,60})(?P=q)[ \t]*,[ \t]*(?P<val>" + _QUOTED + ")")
# a bearer token has a digit or a token punctuation mark ('Bearer authentication' is prose)
_BEARER = re.compile(r"(?<![\w\-])(?P<pre>(?i:bearer)[ \t]+)"
                     r"(?P<val>(?=[A-Za-z\-._~+/]*[0-9\-._~+/])[A-Za-z0-9\-._~+/]{8,}=*)")
_MYSQL_P = re.compile(
    r"(?P<pre>(?<![\w\-])(?:mysql|mysqldump|mysqladmin|mariadb|mariadb-dump|sshpass)\b"
    r"[^\n|;&]*?\s-p)"
    r"(?P<val>[^\s\"']\S*|" + _QUOTED + ")"
    # docker/podman/helm registry login -p VALUE (a separate argument)
    r"|(?P<pre2>(?<![\w\-])(?:docker|podman|helm|buildah|skopeo)\b[^\n|;&]*?\blogin\b"
    r"[^\n|;&]*?\s-p[ \t]+)(?P<val2>[^\s\"'\-]\S*)")
_CURL_USER = re.compile(
    r"(?P<pre>(?<![\w\-])(?:-u|--user)[ \t]+[\"']?[^\s:\"']+:)(?P<val>[^\s\"']+)")
_SQL = re.compile(
    r"(?P<pre>(?<![\w'\"\-])(?i:identified[ \t]+by(?:[ \t]+password)?|password|credentials"
    r"|secret_access_key|access_key_id|session_token|master_password)[ \t]+)"
    r"(?P<val>'(?:[^']|''){1,4096}'|\"(?:[^\"\\]|\\.){1,4096}\"|\$\$[\s\S]{1,4096}?\$\$)"
    # Oracle: IDENTIFIED BY an unquoted password
    r"|(?P<pre2>(?<![\w'\"])(?i:identified[ \t]+by)[ \t]+)"
    r"(?P<val2>(?!(?i:password|values)\b)[^\s;'\"]+)")
_ORACLE = re.compile(
    r"(?P<pre>(?:jdbc:oracle:[a-z]+:|\bsqlplus[ \t]+(?:-\w+[ \t]+)*)[^\s/@:\"']+/)"
    r"(?P<val>[^\s@\"']+)(?=@)")

# cheap substring gates: a context regex runs only on text that can hold its keyword
_CLI_P_NEEDLES = ("mysql", "mariadb", "sshpass", "login")
_SQL_NEEDLES = tuple(w for k in ("assword", "dentified", "redentials", "ccess_key", "ession_token")
                     for w in (k, k.upper()))


def _has_any(text: str, needles: tuple[str, ...]) -> bool:
    return any(n in text for n in needles)


def _discord(m: re.Match[str]) -> str:
    token = m.group()
    if not any(c.isdigit() for c in token):
        return token  # a dotted Python path of the right lengths, not a Discord token
    return MASK


_NULLISH = frozenset({"null", "none", "nil", "", MASK})


def _masked_value(val: str) -> str:
    """``"x"`` -> ``"***"``, ``Bearer x`` -> ``Bearer ***``, ``x`` -> ``***``."""
    if val[:1] in ("'", '"') and len(val) >= 2:
        return val[0] + MASK + val[-1]
    head, sep, _ = val.partition(" ")
    if sep and head.lower() in ("bearer", "basic", "token", "digest", "negotiate"):
        return f"{head} {MASK}"
    return MASK


def _inner(val: str) -> str:
    if val[:1] in ("'", '"') and len(val) >= 2:
        return val[1:-1]
    head, sep, rest = val.partition(" ")
    return rest.strip() if sep and head.lower() in ("bearer", "basic", "token") else val


class ShapeMasker:
    """Masks secret shapes in one string. ``is_secret_key`` decides key/value pairs;
    ``learn`` receives each value masked because of its key (see ``KnownSecrets``)."""

    def __init__(self, is_secret_key: Callable[[str], bool],
                 learn: Callable[[str], object]) -> None:
        self._is_secret_key = is_secret_key
        self._learn = learn

    def __call__(self, text: str) -> str:
        for needle, regex, discord in _COMMON_FAMILIES:
            if len(text) >= _MIN_LEN[needle] and needle in text:
                text = regex.sub(_discord if discord else MASK, text)
        if _ANY_NEEDLE.search(text) is not None:
            for needles, regex, _ in _RARE_FAMILIES:
                if any(needle in text for needle in needles):
                    text = regex.sub(MASK, text)
        if "PRIVATE KEY" in text or "PuTTY" in text:
            text = _PRIVATE_KEY.sub(MASK, text)
        if "@" in text:
            if "://" in text:
                text = _URL_PASSWORD.sub(self._url_password, text)
                text = _URL_TOKEN_USER.sub(self._url_token_user, text)
            if "/" in text and ("racle" in text or "sqlplus" in text):
                text = _ORACLE.sub(self._pre_masked, text)
        if "=" in text or ":" in text:
            text = self._key_values(text)
        if "-" in text:
            # before --key value: '-pS3cr3t db' is a password, then a name
            if "-p" in text and _has_any(text, _CLI_P_NEEDLES):
                text = _MYSQL_P.sub(self._pre_masked, text)
            if "," in text:
                text = _FLAG_LIST.sub(self._flag, text)
            text = _FLAG_VALUE.sub(self._flag, text)
            if "-u " in text or "-u\t" in text or "--user" in text:
                text = _CURL_USER.sub(self._pre_masked, text)
        if "earer" in text:
            text = _BEARER.sub(self._pre_masked, text)
        if _has_any(text, _SQL_NEEDLES):
            text = _SQL.sub(self._pre_masked, text)
        return text


    @staticmethod
    def _url_password(m: re.Match[str]) -> str:
        if PORT_THEN_PATH.match(m["pw"]):
            return m.group()  # scheme://host:8080/path@v2: a port, not a password
        return f"{m['pre']}{MASK}@"

    @staticmethod
    def _url_token_user(m: re.Match[str]) -> str:
        user = m["user"]
        if (user == MASK or m["pre"].lower().startswith(CONTAINER_AT_ACCOUNT_SCHEMES)
                or not (any(c.isdigit() for c in user) and any(c.isalpha() for c in user))):
            return m.group()
        return f"{m['pre']}{MASK}@"

    def _key_values(self, text: str) -> str:
        out: list[str] = []
        pos = 0
        for m in _KEY_VALUE.finditer(text):
            val = m["val"]
            if (m.start() < pos or _inner(val).lower() in _NULLISH
                    or not self._is_secret_key(m["key"])):
                continue
            self._learn(_inner(val))
            out += (text[pos:m.end()], _masked_value(val))
            pos = m.end() + len(val)
        if not out:
            return text
        out.append(text[pos:])
        return "".join(out)

    def _flag(self, m: re.Match[str]) -> str:
        val = m["val"]
        if _inner(val) in ("", MASK) or not self._is_secret_key(m["key"]):
            return m.group()
        self._learn(_inner(val))
        return m.group()[: m.start("val") - m.start()] + _masked_value(val)

    @staticmethod
    def _pre_masked(m: re.Match[str]) -> str:
        """``pre`` kept, ``val`` masked (patterns with a second form name them pre2/val2)."""
        second = "pre2" in m.re.groupindex and m["pre2"] is not None
        pre, val = (m["pre2"], m["val2"]) if second else (m["pre"], m["val"])
        if _inner(val) in ("", MASK):
            return m.group()
        return pre + (_masked_value(val) if val[:1] in ("'", '"') else MASK)
