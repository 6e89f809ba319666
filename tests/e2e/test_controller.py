"""The controller as users run it: a worker and beat in their own processes, driven only
through kubectl and Git."""

from __future__ import annotations

import time

from .stack import CM, DEPLOY, Stack, configmap, deployment, wait_for


def test_watch_syncs_a_new_app_and_sweep_picks_up_commits_and_heals_drift(
        stack: Stack) -> None:
    first = stack.origin.commit({"app/cm.yaml": configmap("settings", {"greeting": "hello"}),
                                 "app/deploy.yaml": deployment("web")})
    stack.worker("w1")
    stack.beat()
    created = time.time()
    stack.apply_app(stack.app_manifest("guestbook", "app",
                                       automated={"prune": True, "selfHeal": True}))
    # The watch queues the first refresh at once; the automated policy syncs it.
    wait_for(lambda: stack.live(CM, "settings"), 15, what="the ConfigMap applied")
    applied = min(r["start"] for r in stack.writes(since=created))
    assert applied - created < 5, "the watch, not the sweep, started the first sync"
    wait_for(lambda: stack.synced_healthy("guestbook", first), 20, what="Synced and Healthy")
    status = stack.status("guestbook")
    assert status["operationState"]["phase"] == "Succeeded"
    assert status["history"][0]["revision"] == first

    # A commit: the sweep (every 2 s here) sees the branch move and the app syncs it.
    second = stack.origin.commit({"app/cm.yaml": configmap("settings", {"greeting": "hi"})})
    wait_for(lambda: (stack.live(CM, "settings") or {}).get("data") == {"greeting": "hi"}, 20,
             what="the new commit applied")
    wait_for(lambda: stack.synced_healthy("guestbook", second), 20, what="Synced at the commit")

    # A drift made with kubectl is healed.
    stack.kubectl("-n", stack.dest, "set", "image", "deployment/web", "main=evil:1")
    wait_for(lambda: (stack.live(DEPLOY, "web") or {}).get("spec", {}).get("template", {})
             .get("spec", {}).get("containers", [{}])[0].get("image") == "nginx:1.27", 20,
             what="the drift healed")
    wait_for(lambda: stack.synced_healthy("guestbook", second), 20, what="Synced again")
    out = stack.kubectl("get", "applications", "-n", stack.control).stdout
    assert "guestbook" in out and "Synced" in out and "Healthy" in out
