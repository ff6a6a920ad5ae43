"""The voting and publication pages: self-contained, parseable, rendered as shipped."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from importlib.resources import files
from pathlib import Path

import pytest

from services.ingest.vote_page import render_vote_page
from services.publish.page import render_campaign_page

ASSETS = {
    "services.ingest": ["vote.html", "vote.js", "vote.css"],
    "services.publish": ["campaign.html", "campaign.js", "campaign.css"],
}
SCRIPTS = [("services.ingest", "vote.js"), ("services.publish", "campaign.js")]
# Checks the scripts against ES2017 with the acorn parser that ships inside node itself.
ACORN_ES2017 = """
const acorn = require('internal/deps/acorn/acorn/dist/acorn');
acorn.parse(require('fs').readFileSync(process.argv[1], 'utf8'), {ecmaVersion: 2017});
"""


def asset(package: str, name: str) -> str:
    return files(package).joinpath("static", name).read_text("utf-8")


def inline_scripts(html: str) -> list[str]:
    return re.findall(r"<script>\n(.*?)</script>", html, flags=re.S)


def node() -> str:
    path = shutil.which("node")
    if path is None:
        pytest.skip("node is not installed: cannot parse the page scripts")
    return path


@pytest.mark.parametrize(
    ("package", "name"), [(p, n) for p, names in ASSETS.items() for n in names]
)
def test_page_assets_reference_nothing_outside_the_page(package: str, name: str) -> None:
    text = asset(package, name)
    assert "http://" not in text and "https://" not in text
    assert "//cdn" not in text.lower()
    assert "@import" not in text and "url(" not in text
    assert "import(" not in text and "importScripts" not in text


@pytest.mark.parametrize(
    "html",
    [render_vote_page(), render_campaign_page(False), render_campaign_page(True)],
    ids=["vote", "campaign-api", "campaign-static"],
)
def test_rendered_pages_inline_everything(html: bytes) -> None:
    text = html.decode("utf-8")
    assert not re.search(r"<script[^>]*\ssrc=", text), "an external script"
    assert "<link" not in text, "an external stylesheet"
    assert "http://" not in text and "https://" not in text
    assert len(inline_scripts(text)) == 1
    assert text.count("<style>") == 1


@pytest.mark.parametrize(("package", "name"), SCRIPTS)
def test_scripts_parse(package: str, name: str, tmp_path: Path) -> None:
    script = tmp_path / name
    script.write_text(asset(package, name), "utf-8")
    run = subprocess.run([node(), "--check", str(script)], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr


@pytest.mark.parametrize(("package", "name"), SCRIPTS)
def test_scripts_use_nothing_newer_than_es2017(package: str, name: str, tmp_path: Path) -> None:
    # Older WeChat in-app browsers stop at ES2017: no ?., ??, object spread or catch without (e).
    script = tmp_path / name
    script.write_text(asset(package, name), "utf-8")
    run = subprocess.run(
        [node(), "--expose-internals", "-e", ACORN_ES2017, str(script)],
        capture_output=True,
        text=True,
    )
    if "Cannot find module" in run.stderr:
        pytest.skip("this node does not bundle acorn; node --check still ran")
    assert run.returncode == 0, run.stderr


def test_es2017_check_rejects_newer_syntax(tmp_path: Path) -> None:
    script = tmp_path / "new.js"
    script.write_text("var a = {}; var b = a?.b ?? 1;\n", "utf-8")
    run = subprocess.run(
        [node(), "--expose-internals", "-e", ACORN_ES2017, str(script)],
        capture_output=True,
        text=True,
    )
    if "Cannot find module" in run.stderr:
        pytest.skip("this node does not bundle acorn")
    assert run.returncode != 0


@pytest.mark.parametrize(
    "html", [render_vote_page(), render_campaign_page(True)], ids=["vote", "campaign"]
)
def test_inlined_script_is_the_whole_script_and_parses(html: bytes, tmp_path: Path) -> None:
    script = tmp_path / "inline.js"
    script.write_text(inline_scripts(html.decode("utf-8"))[0], "utf-8")
    run = subprocess.run([node(), "--check", str(script)], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr


def test_vote_page_is_chinese_and_has_the_test_hooks() -> None:
    text = render_vote_page().decode("utf-8")
    assert '<html lang="zh-CN">' in text
    assert 'name="viewport"' in text
    for hook in (
        'id="submit"',
        'id="receipt"',
        'id="fate"',
        'id="phone"',
        'id="code"',
        "'data-candidate'",
        'aria-live="polite"',
    ):
        assert hook in text, hook


def test_campaign_page_has_the_test_hooks() -> None:
    text = render_campaign_page(False).decode("utf-8")
    assert '<html lang="zh-CN">' in text
    for hook in (
        'id="status"',
        'id="seq"',
        'id="hash"',
        "'data-candidate'",
        "'data-votes'",
        "最终结果（已签名封存）",
        "votestream verify final.json",
        'href="/v1/publish/public-key"',
    ):
        assert hook in text, hook


def test_static_switch_follows_the_argument() -> None:
    api = render_campaign_page(False).decode("utf-8")
    static = render_campaign_page(True).decode("utf-8")
    assert '<meta name="votestream-mode" content="api">' in api
    assert '<meta name="votestream-mode" content="static">' in static
    assert 'content="static"' not in api


def test_embedded_data_round_trips_and_cannot_close_its_script_element() -> None:
    hostile = {"campaign_id": "x", "title": "</script><script>alert(1)</script><!--"}
    page = render_campaign_page(True, campaign={"title": "标题"}, snapshot=hostile)
    text = page.decode("utf-8")
    assert "<script>alert(1)" not in text
    match = re.search(
        r'<script type="application/json" id="votestream-data">(.*?)</script>', text, flags=re.S
    )
    assert match is not None
    assert json.loads(match.group(1)) == {"campaign": {"title": "标题"}, "snapshot": hostile}


def test_api_page_embeds_nothing_even_when_given_data() -> None:
    page = render_campaign_page(False, snapshot={"seq": 1})
    assert b'id="votestream-data">null</script>' in page
