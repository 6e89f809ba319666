"""The Lua sandbox health scripts run in: what a script can see of the object, what it cannot
reach, and that every failure becomes Unknown with the reason instead of an exception."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest

from gitops_tasks.health import Customizations, Health, HealthStatus, resource_health
from gitops_tasks.health.customizations import HealthScript
from gitops_tasks.health.lua import ScriptError, run_health_script

H = HealthStatus
WIDGET: dict[str, Any] = {
    "apiVersion": "example.com/v1",
    "kind": "Widget",
    "metadata": {"name": "w", "namespace": "ns", "labels": {}},
    "spec": {"ports": [80, 443], "empty": [], "nothing": None},
    "status": {"conditions": [{"type": "Ready", "status": "True", "message": "all good"}]},
}


def health(script: str, obj: dict[str, Any] | None = None) -> Health | None:
    custom = Customizations.of([HealthScript("example.com", "Widget", script, "test script")])
    return resource_health(obj or WIDGET, custom)


def test_the_object_as_argo_cds_conversion_gives_it() -> None:
    script = """
    local c = obj.status.conditions[1]
    return {status = "Healthy", message = table.concat({
      c.message, #obj.spec.ports, obj.spec.ports[1], obj.spec.ports[2], #obj.spec.empty,
      tostring(obj.spec.nothing), tostring(next(obj.metadata.labels)), type(obj.spec.ports[1]),
    }, ",")}
    """
    assert health(script) == Health(H.HEALTHY, "all good,2,80,443,0,nil,nil,number")


def test_goto_works_as_in_argo_cds_scripts() -> None:
    script = """
    local n = 0
    for _, p in ipairs(obj.spec.ports) do
      if p == 80 then goto continue end
      n = n + p
      ::continue::
    end
    return {status = "Healthy", message = tostring(n)}
    """
    assert health(script) == Health(H.HEALTHY, "443")


@pytest.mark.parametrize("name", [
    "io", "require", "load", "loadstring", "loadfile", "dofile", "python", "debug", "package",
    "jit", "collectgarbage", "print", "module", "coroutine", "newproxy", "setfenv", "getfenv",
])
def test_dangerous_globals_are_absent(name: str) -> None:
    script = f'return {{status = "Healthy", message = type({name})}}'
    assert health(script) == Health(H.HEALTHY, "nil")


@pytest.mark.parametrize(("call", "field"), [
    ('os.execute("touch /tmp/gitops-tasks-pwned")', "execute"),
    ('os.remove("/etc/hostname")', "remove"),
    ('os.getenv("HOME")', "getenv"),
    ('io.open("/etc/passwd")', "io"),
    ('require("os")', "require"),
    ('python.eval("1")', "python"),
    ('string.dump(print)', "dump"),
])
def test_escapes_fail_with_the_reason(call: str, field: str) -> None:
    result = health(call)
    assert result is not None and result.status is H.UNKNOWN
    assert result.message.startswith("health script test script failed: health.lua:1:")
    assert field in result.message
    assert not Path("/tmp/gitops-tasks-pwned").exists()


def test_os_keeps_only_time_and_date() -> None:
    script = 'return {status = "Healthy", message = type(os.time()) .. os.date("!%Y", 0)}'
    assert health(script) == Health(H.HEALTHY, "number1970")


def test_no_python_object_is_reachable() -> None:
    # The object is copied into Lua values: anything that is not JSON arrives as its text, never
    # as a Python object whose attributes lead back to Python.
    result = run_health_script(
        'return {status = "Healthy", message = type(obj.x) .. tostring(obj.x.__class__)}',
        {"x": object()})
    assert result == Health(H.HEALTHY, "stringnil")


def test_the_shared_string_metatable_is_out_of_reach() -> None:
    result = health('getmetatable("").__index.upper = nil')
    assert result is not None and result.status is H.UNKNOWN
    assert health('return {status = "Healthy", message = ("a"):upper()}') == Health(H.HEALTHY,
                                                                                    "A")


def test_globals_do_not_leak_between_runs() -> None:
    assert health('leaked = "yes" string.upper = nil return {status = "Healthy"}') == Health(
        H.HEALTHY)
    assert health('return {status = "Healthy", message = tostring(leaked) .. '
                  'string.upper("b")}') == Health(H.HEALTHY, "nilB")


@pytest.mark.parametrize("script", [
    "while true do end",
    "while true do pcall(function() while true do end end) end",
    "local function f() return f() end while true do pcall(f) end",
    "repeat local x = 1 until false",
])
def test_an_endless_script_is_stopped_by_the_time_limit(script: str) -> None:
    started = time.monotonic()
    assert health(script) == Health(
        H.UNKNOWN, "health script test script failed: script timed out")
    assert time.monotonic() - started < 5


def test_the_time_limit_is_per_call() -> None:
    with pytest.raises(ScriptError, match="timed out"):
        run_health_script("while true do end", {}, time_limit=0.05)
    # The runtime is usable again afterwards.
    assert run_health_script('return {status = "Healthy"}', {}) == Health(H.HEALTHY)


def test_memory_bombs_are_stopped() -> None:
    result = health('local s = ("x"):rep(1e9)')
    assert result is not None and result.status is H.UNKNOWN and "string.rep" in result.message
    result = health('local t = {} for i = 1, 1e8 do t[i] = "abcdefghij" .. i end')
    assert result is not None and result.status is H.UNKNOWN
    assert "memory" in result.message or "timed out" in result.message


def test_a_syntax_error_is_unknown_with_luas_message() -> None:
    assert health("return {status = = 1}") == Health(
        H.UNKNOWN, "health script test script failed: syntax error: health.lua:1: "
                   "unexpected symbol near '='")


def test_a_runtime_error_is_unknown_with_luas_message() -> None:
    assert health('local x = nil\nreturn {status = x.y}') == Health(
        H.UNKNOWN, "health script test script failed: health.lua:2: attempt to index local "
                   "'x' (a nil value)")
    assert health('error("custom failure")') == Health(
        H.UNKNOWN, "health script test script failed: health.lua:1: custom failure")


@pytest.mark.parametrize("status", ["Bogus", "healthy", "", 3])
def test_an_invalid_status_is_unknown(status: object) -> None:
    value = f'"{status}"' if isinstance(status, str) else str(status)
    result = health(f"return {{status = {value}, message = 'x'}}")
    assert result is not None and result.status is H.UNKNOWN
    assert "invalid health status" in result.message


def test_a_result_that_is_not_a_table_is_unknown() -> None:
    assert health('return "Healthy"') == Health(
        H.UNKNOWN, "health script test script failed: expected a table from the script, "
                   "got str")


@pytest.mark.parametrize(("message", "expected"), [
    ("nil", ""), ("42", "42"), ("1.5", "1.5"), ('"text"', "text")])
def test_messages(message: str, expected: str) -> None:
    assert health(f'return {{status = "Degraded", message = {message}}}') == Health(
        H.DEGRADED, expected)


def test_every_status_is_accepted() -> None:
    for status in HealthStatus:
        assert health(f'return {{status = "{status.value}"}}') == Health(status)


def test_compiled_scripts_are_cached_by_text() -> None:
    script = 'return {status = "Healthy", message = obj.metadata.name}'
    run_health_script(script, WIDGET)
    started = time.perf_counter()
    for _ in range(200):
        assert run_health_script(script, WIDGET) == Health(H.HEALTHY, "w")
    # 200 runs of a cached script on a small object: well under a millisecond each.
    assert time.perf_counter() - started < 2.0


def test_threads_each_get_their_own_runtime() -> None:
    results: list[Health | None] = []

    def work() -> None:
        results.append(run_health_script('return {status = "Healthy", message = "t"}', {}))

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [Health(H.HEALTHY, "t")] * 4
