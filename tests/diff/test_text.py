"""text(): the unified YAML diff people read, and Secret masking."""

from __future__ import annotations

import base64

from gitops_tasks.diff import compare
from gitops_tasks.diff.text import mask_secrets, to_yaml
from gitops_tasks.model.resources import ResourceKey

from .helpers import load


def test_image_change_reads_as_one_changed_line_with_context() -> None:
    doc = load("deployment-image-changed.yaml")
    text = compare(ResourceKey.of(doc["live"]), doc["predicted"], doc["live"]).text()
    assert text == (
        "--- live\n"
        "+++ desired\n"
        "@@ -29,7 +29,7 @@\n"
        "         app.kubernetes.io/name: web\n"
        "     spec:\n"
        "       containers:\n"
        "-      - image: nginx:1.25\n"
        "+      - image: nginx:1.26\n"
        "         imagePullPolicy: IfNotPresent\n"
        "         name: web\n"
        "         ports:\n"
    )


def test_removed_label_and_no_churn_in_the_text() -> None:
    doc = load("deployment-label-removed-from-git.yaml")
    text = compare(ResourceKey.of(doc["live"]), doc["predicted"], doc["live"]).text(context=1)
    assert "-    tier: frontend\n" in text
    assert [line for line in text.splitlines()[2:] if line[:1] in "+-"] == [
        "-    tier: frontend"]
    for noise in ("managedFields", "resourceVersion", "generation", "status:", "uid"):
        assert noise not in text


def test_text_is_stable_and_keys_sorted() -> None:
    doc = load("configmap-reloader-rewrote-key.yaml")
    key = ResourceKey.of(doc["live"])
    shuffled = {k: doc["predicted"][k] for k in reversed(list(doc["predicted"]))}
    first = compare(key, doc["predicted"], doc["live"]).text(context=100)
    again = compare(key, shuffled, doc["live"]).text(context=100)
    assert first == again
    lines = first.splitlines()
    assert lines.index(" apiVersion: v1") < lines.index(" data:") < lines.index(" kind: ConfigMap")


def test_multi_line_values_diff_line_by_line() -> None:
    doc = load("configmap-reloader-rewrote-key.yaml")
    text = compare(ResourceKey.of(doc["live"]), doc["predicted"], doc["live"]).text(context=10)
    assert "   config.yaml: |\n" in text
    assert "-    # reloaded by config-reloader at 2024-05-02T09:00:00Z\n" in text
    assert "-  mode: prod\n+  mode: canary\n" in text


def test_secret_values_never_appear_and_changes_stay_visible() -> None:
    doc = load("secret-password-changed.yaml")
    diff = compare(ResourceKey.of(doc["live"]), doc["predicted"], doc["live"])
    text = diff.text(context=100)
    secrets = ["admin", "hunter2-old-password", "correct-horse-battery", "tok-5f2b9c"]
    for value in secrets:
        assert value not in text
        assert base64.b64encode(value.encode()).decode() not in text
    assert "last-applied" not in text  # it carried an old password in clear
    # Same value, same mask; a changed value gets another mask; a new key shows as added.
    assert "   username: ++++++++\n" in text
    assert "-  password: ++++++++\n+  password: +++++++++\n" in text
    assert "+  token: ++++++++\n" in text
    # The ResourceDiff itself still holds the real (normalised) values for the engine.
    assert diff.desired is not None
    assert diff.desired["data"]["token"] == base64.b64encode(b"tok-5f2b9c").decode()


def test_masking_a_missing_or_pruned_secret() -> None:
    doc = load("secret-password-changed.yaml")
    key = ResourceKey.of(doc["live"])
    missing = compare(key, doc["predicted"], None).text()
    pruned = compare(key, None, doc["live"]).text()
    assert "+  password: ++++++++\n" in missing and "-  password: ++++++++\n" in pruned
    for text in (missing, pruned):
        assert "aHVudGVy" not in text and "Y29ycmVjd" not in text  # base64 of the passwords


def test_mask_secrets_per_key_and_string_data() -> None:
    live = {"data": {"a": "MQ==", "b": "MQ=="}, "stringData": {"s": "x"}}
    desired = {"data": {"a": "Mg==", "b": "MQ=="}, "stringData": {"s": "x"}}
    masked_live, masked_desired = mask_secrets(live, desired)
    assert masked_live == {"data": {"a": "++++++++", "b": "++++++++"},
                           "stringData": {"s": "++++++++"}}
    assert masked_desired == {"data": {"a": "+++++++++", "b": "++++++++"},
                              "stringData": {"s": "++++++++"}}
    assert live["data"]["a"] == "MQ=="  # copies, not in place


def test_a_config_map_is_not_masked() -> None:
    doc = load("configmap-reloader-rewrote-key.yaml")
    text = compare(ResourceKey.of(doc["live"]), doc["predicted"], doc["live"]).text()
    assert "+  mode: canary" in text


def test_yaml_of_plain_and_multi_line_strings() -> None:
    assert to_yaml({"b": "x\ny\n", "a": "one"}) == "a: one\nb: |\n  x\n  y\n"
