"""The documentation stays consistent: a short front page, every local link resolves, the site builds."""

from __future__ import annotations

import re
import subprocess
import sys
import time

from helpers import ROOT

PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


def test_readme_is_a_front_page():
    lines = (ROOT / "README.md").read_text().splitlines()
    assert len(lines) <= 250, f"README.md has {len(lines)} lines; move sections to docs/"


def test_local_links_resolve():
    broken = []
    for page in PAGES:
        for target in LINK.findall(page.read_text()):
            if "://" in target:
                continue
            if not (page.parent / target).exists():
                broken.append(f"{page.relative_to(ROOT)}: {target}")
    assert not broken, broken


def test_docs_site_builds_strict(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


ASSET = re.compile(r"<(script|link|img)\b[^>]*?\b(src|href)\s*=\s*[\"']([^\"']*)", re.IGNORECASE)


def test_docs_site_works_offline_from_disk(tmp_path):
    """``mkdocs build`` then ``site/index.html`` opened from disk: no page loads a script, style, font or image
    from another host (links in prose to other sites are fine), and pages link to each other as ``.html``
    files (directory URLs would open folder listings from disk). A build takes well under a second."""
    site = tmp_path / "site"
    start = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert time.monotonic() - start < 30
    pages = sorted(site.rglob("*.html"))
    assert len(pages) > len(list((ROOT / "docs").glob("*.md")))
    remote = [
        f"{page.relative_to(site)}: <{tag} {url}>"
        for page in pages
        for tag, _, url in ASSET.findall(page.read_text())
        if re.match(r"(https?:)?//", url)
    ]
    assert not remote, remote
    index = (site / "index.html").read_text()
    for page in ("command-line", "manifests", "parity"):
        assert f'href="{page}.html"' in index and (site / f"{page}.html").is_file()
    assert not re.search(r'href="[a-z-]+/"', index), "pages must be linked as files, not folders"
