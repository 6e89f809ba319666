"""The application panel in a real headless browser (Debian's chromium driven by Playwright)
against the real stack: a receiver serving the panel and the API, a worker, beat and kubesim.

Screenshots of every step are written to $GITOPS_TASKS_TEST_ARTIFACTS/panel (default: the
session's pytest temp directory) so a reader can see what the test saw."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from .stack import DEPLOY, Stack, configmap, deployment, wait_for

playwright_sync = pytest.importorskip("playwright.sync_api")

ADMIN = "admin-token-0123456789abcdef"
READER = "reader-token-0123456789abcdef"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or ""
MARKUP = '<img src=x onerror="window.pwned=1"><script>window.pwned=2</script>'

pytestmark = pytest.mark.skipif(not CHROMIUM, reason="no chromium on PATH (Debian: apt-get "
                                                     "install chromium); .ci/run installs it")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with playwright_sync.sync_playwright() as p:
        # As root in a container the sandbox cannot start; the page is our own.
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True,
                              args=["--no-sandbox", "--disable-dev-shm-usage"])
        yield b
        b.close()


@pytest.fixture
def shots(request: pytest.FixtureRequest) -> Path:
    # Not under pytest's basetemp, which keeps only the last three runs.
    root = Path(os.environ.get("GITOPS_TASKS_TEST_ARTIFACTS")
                or Path(tempfile.gettempdir()) / "gitops-tasks-artifacts")
    out = root / "panel" / request.node.name
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    return out


@pytest.fixture
def page(browser: Any, shots: Path, request: pytest.FixtureRequest) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1366, "height": 900})
    page = context.new_page()
    yield page
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        page.screenshot(path=str(shots / "failed.png"), full_page=True)
        sys.stderr.write(f"panel screenshots: {shots}\n")
    context.close()


def sign_in(page: Any, base: str, token: str) -> None:
    page.goto(base + "/")
    page.get_by_label("API token").fill(token)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("heading", name="Applications").wait_for()


def row(page: Any, app: str) -> Any:
    return page.locator(f'tr[data-app="{app}"]')


def start(stack: Stack) -> str:
    stack.worker()
    stack.beat()
    _, base = stack.webhook("webhook", "--insecure",
                            GITOPS_TASKS_API_ADMIN_TOKENS=ADMIN,
                            GITOPS_TASKS_API_READONLY_TOKENS=READER)
    return base


def owned(kind: str, api_version: str, name: str, namespace: str, owner: dict[str, Any],
          **extra: Any) -> str:
    meta = owner["metadata"]
    return yaml.safe_dump({
        "apiVersion": api_version, "kind": kind,
        "metadata": {"name": name, "namespace": namespace, "ownerReferences": [{
            "apiVersion": owner["apiVersion"], "kind": owner["kind"], "name": meta["name"],
            "uid": meta["uid"], "controller": True}]}, **extra})


def test_an_admin_sees_apps_turn_healthy_diffs_a_drift_and_syncs_it(
        stack: Stack, page: Any, shots: Path) -> None:
    stack.origin.commit({"web/cm.yaml": configmap("web", {"mode": "blue"}),
                         "web/deploy.yaml": deployment("web"),
                         "api/cm.yaml": configmap("api")},
                        message=f"first deploy {MARKUP}")
    base = start(stack)
    for name in ("web", "api"):
        stack.apply_app(stack.app_manifest(name, name, automated={}))
    sign_in(page, base, ADMIN)
    # No reload: the list follows the apps until they are Synced and Healthy.
    for name in ("web", "api"):
        row(page, name).get_by_text("Healthy").wait_for(timeout=60000)
        row(page, name).get_by_text("Synced", exact=True).wait_for(timeout=60000)
    row(page, "web").get_by_text("first deploy").wait_for()
    page.screenshot(path=str(shots / "01-list-synced-healthy.png"), full_page=True)

    # The commit message carries markup: it is text, and nothing of it ran.
    assert MARKUP in row(page, "web").inner_text()
    assert page.evaluate("window.pwned") is None
    assert page.locator("main img, main script").count() == 0

    # What the Deployment's controller made (kubesim runs no controllers: made here).
    live = stack.live(DEPLOY, "web")
    assert live is not None
    stack.kubectl("apply", "-f", "-", stdin=owned(
        "ReplicaSet", "apps/v1", "web-5d8f7c", stack.dest, live,
        spec={"selector": {"matchLabels": {"app": "web"}}, "template": {
            "metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]}}}))
    rs = stack.get(f"/apis/apps/v1/namespaces/{stack.dest}/replicasets/web-5d8f7c")
    assert rs is not None
    stack.kubectl("apply", "-f", "-", stdin=owned(
        "Pod", "v1", "web-5d8f7c-x2k4", stack.dest, rs,
        spec={"containers": [{"name": "web", "image": "nginx:1.27"}]}))

    # Drift made with kubectl: the list shows it without a reload.
    stack.kubectl("-n", stack.dest, "patch", "configmap", "web", "--type", "merge",
                  "-p", '{"data": {"mode": "drifted"}}')
    row(page, "web").get_by_text("OutOfSync").wait_for(timeout=60000)
    page.screenshot(path=str(shots / "02-list-drifted.png"), full_page=True)

    page.get_by_role("link", name="web", exact=True).click()
    page.get_by_role("heading", name="web", exact=True).wait_for()
    tree = page.locator("section > ul.tree")
    tree.get_by_text("web-5d8f7c-x2k4").wait_for(timeout=30000)
    assert "ReplicaSet" in tree.inner_text() and "Pod" in tree.inner_text()
    page.screenshot(path=str(shots / "03-app-tree.png"), full_page=True)

    page.get_by_role("link", name="Diff").click()
    section = page.locator('section.diff[data-kind="ConfigMap"][data-name="web"]')
    section.wait_for(timeout=60000)
    text = section.inner_text()
    assert "-  mode: drifted" in text and "+  mode: blue" in text, text
    page.screenshot(path=str(shots / "04-diff.png"), full_page=True)
    page.get_by_role("button", name="Side by side").click()
    page.locator("table.sbs td.add").first.wait_for()
    page.screenshot(path=str(shots / "05-diff-side-by-side.png"), full_page=True)

    page.get_by_role("link", name="web", exact=True).click()
    # By keyboard: the focus survives the page's polling, Enter opens the dialog.
    page.get_by_role("button", name="Sync", exact=True).focus()
    page.wait_for_timeout(4000)
    assert page.evaluate("document.activeElement.textContent") == "Sync"
    page.keyboard.press("Enter")
    dialog = page.get_by_role("dialog")
    dialog.get_by_label("Prune: delete what is no longer in Git").check()
    # kubectl now owns .data.mode: server-side apply takes it back only when forced.
    dialog.get_by_label("Force: take over fields another manager").check()
    page.screenshot(path=str(shots / "06-sync-dialog.png"), full_page=True)
    dialog.get_by_role("button", name="Sync").click()
    page.get_by_role("status").get_by_text("Sync: requested.").wait_for()
    # The operation the panel started shows its progress, then the app is Synced again.
    page.locator('.operation[data-phase="Succeeded"]').wait_for(timeout=60000)
    page.locator(".summary").get_by_text("Synced", exact=True).wait_for(timeout=60000)
    tree.locator("li", has_text="ConfigMap").get_by_text("Synced", exact=True).wait_for(
        timeout=15000)
    page.screenshot(path=str(shots / "07-synced-again.png"), full_page=True)
    cm = stack.get(f"/api/v1/namespaces/{stack.dest}/configmaps/web")
    assert cm is not None and cm["data"] == {"mode": "blue"}
    assert page.evaluate("window.pwned") is None


def test_a_read_only_token_sees_no_actions_and_markup_stays_text(
        stack: Stack, page: Any, shots: Path) -> None:
    stack.origin.commit({"web/cm.yaml": configmap("web", {"note": MARKUP})})
    base = start(stack)
    stack.apply_app(stack.app_manifest("web", "web", automated={}))
    # An unknown field named with markup: the InvalidSpecError condition quotes it.
    bad = stack.app_manifest("bad", "web")
    bad["spec"]["source"][MARKUP] = "x"
    stack.apply_app(bad)
    wait_for(lambda: stack.synced_healthy("web"), 60, what="web synced")
    sign_in(page, base, READER)
    assert page.locator("#who").inner_text() == "read-only"
    page.get_by_role("link", name="bad", exact=True).click()
    page.get_by_text("InvalidSpecError").wait_for(timeout=60000)
    assert MARKUP in page.locator("ul.conditions").inner_text()
    page.screenshot(path=str(shots / "01-read-only-invalid-spec.png"), full_page=True)
    page.goto(base + "/#/app/" + stack.control + "/web")
    page.get_by_role("heading", name="web", exact=True).wait_for()
    page.locator("table.history").wait_for(timeout=30000)
    for action in ("Sync", "Refresh", "Hard refresh", "Roll back", "Terminate"):
        assert page.get_by_role("button", name=action, exact=True).count() == 0, action
    page.screenshot(path=str(shots / "02-read-only-app.png"), full_page=True)
    page.get_by_role("link", name="Diff").click()
    page.get_by_text("0 of 1 resources differ").wait_for(timeout=60000)
    # The API refuses a read-only session's write whatever the page shows.
    status = page.evaluate("""async (ns) => {
        const s = await (await fetch('/ui/session')).json();
        const r = await fetch('/api/v1/applications/' + ns + '/web/sync', {method: 'POST',
            headers: {'Content-Type': 'application/json', 'X-CSRF-Token': s.csrf},
            body: '{}'});
        return r.status; }""", stack.control)
    assert status == 403
    assert page.evaluate("window.pwned") is None
    assert page.locator("main img, main script").count() == 0


def test_the_demo_apps_in_the_panel_and_ctrl_c_stops_the_demo(
        page: Any, shots: Path, tmp_path: Path) -> None:
    """`make run --keep`'s six apps, seen in the panel as a newcomer sees them; then Ctrl-C
    (SIGINT to the demo) stops every process it started."""
    root = Path(__file__).resolve().parents[2]
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("GITOPS_TASKS_", "KUBECONFIG"))}
    log = tmp_path / "demo.log"
    with log.open("w") as out:
        demo = subprocess.Popen([sys.executable, str(root / "scripts" / "demo.py"),
                                 "--workdir", str(tmp_path / "demo"), "--keep"],
                                stdout=out, stderr=subprocess.STDOUT, env=env,
                                start_new_session=True)
    try:
        wait_for(lambda: "Still running" in log.read_text() or demo.poll() is not None, 240,
                 interval=1, what="the demo")
        text = log.read_text()
        assert demo.poll() is None, text
        url = re.search(r"panel \(sign in with the API token\): (\S+)", text)
        token = re.search(r"API admin token: (\S+)", text)
        assert url and token, text
        sign_in(page, url.group(1).rstrip("/"), token.group(1))
        names = ("root", "guestbook", "kustomize", "helm", "jsonnet", "waves")
        for name in names:
            row(page, name).get_by_text("Healthy").wait_for(timeout=30000)
            row(page, name).get_by_text("Synced", exact=True).wait_for(timeout=30000)
        assert page.get_by_text(f"{len(names)} of {len(names)} applications").count() == 1
        page.screenshot(path=str(shots / "01-demo-apps.png"), full_page=True)
    finally:
        demo.send_signal(signal.SIGINT)
        code = demo.wait(timeout=60)
    assert code == 0, log.read_text()[-3000:]
    assert "Stopped every process" in log.read_text()
    leftover = subprocess.run(["pgrep", "-f", str(tmp_path / "demo")], capture_output=True,
                              text=True)
    assert leftover.stdout.strip() == "", leftover.stdout
