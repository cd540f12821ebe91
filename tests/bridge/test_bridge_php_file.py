"""The PHP file itself: it parses, stays within PHP 7.0 syntax, and states the version the sandbox and
the client expect."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from connectors.opencart.bridge_client import BRIDGE_PHP_PATH, MIN_BRIDGE_VERSION, version_tuple
from connectors.sandbox.opencart import BRIDGE_VERSION

SOURCE = BRIDGE_PHP_PATH.read_text(encoding="utf-8")

#: constructs newer than PHP 7.0 (the oldest PHP a 2.x/3.0 store still runs), with what they are
NEWER_THAN_PHP70 = {
    r"\?\?=": "null coalescing assignment (7.4)",
    r"\bfn\s*\(": "arrow function (7.4)",
    r"\bmatch\s*\(": "match expression (8.0)",
    r"function\s+\w+\s*\([^)]*\)\s*:\s*\??\w+": "return type declaration (7.0 ok, but nullable/void 7.1)",
    r"\(\s*\?[A-Za-z]": "nullable type (7.1)",
    r"catch\s*\([^)]*\|": "multi-catch (7.1)",
    r"\b(public|private|protected)\s+const\b": "constant visibility (7.1)",
    r"\b(public|private|protected)\s+(static\s+)?[A-Za-z?][\w\\]*\s+\$": "typed property (7.4)",
    r"\?->": "nullsafe operator (8.0)",
    r"#\[": "attribute (8.0)",
    r"\bstr_contains\(|\bstr_starts_with\(|\bstr_ends_with\(|\barray_is_list\(": "PHP 8 function",
    r"\bmb_\w+\(": "mbstring function (extension not guaranteed)",
}


@pytest.mark.php
def test_php_lint_is_clean() -> None:
    php = shutil.which("php")
    assert php, "php-cli is required (Makefile installs it)"
    done = subprocess.run(
        [php, "-l", str(BRIDGE_PHP_PATH)], capture_output=True, text=True, timeout=30, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "No syntax errors" in done.stdout


@pytest.mark.parametrize(("pattern", "what"), NEWER_THAN_PHP70.items())
def test_no_syntax_newer_than_php_70(pattern: str, what: str) -> None:
    code = re.sub(r"/\*.*?\*/", "", SOURCE, flags=re.S)
    code = re.sub(r"^\s*//.*$", "", code, flags=re.M)
    assert not re.search(pattern, code), f"uses {what}"


def test_versions_agree() -> None:
    match = re.search(r"define\('STORELINK_BRIDGE_VERSION', '([0-9.]+)'\)", SOURCE)
    assert match, "the PHP file must define STORELINK_BRIDGE_VERSION"
    assert match.group(1) == BRIDGE_VERSION
    assert version_tuple(BRIDGE_VERSION) >= version_tuple(MIN_BRIDGE_VERSION)


def test_display_errors_is_switched_off_before_anything_runs() -> None:
    first_code = SOURCE.index("define('STORELINK_BRIDGE_NAME'")
    assert SOURCE.index("ini_set('display_errors', '0')") < SOURCE.index("function storelink_main")
    assert SOURCE.index("ini_set('display_errors', '0')") > first_code
    assert "catch (Throwable $error)" in SOURCE
