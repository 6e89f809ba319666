"""Run Argo CD health scripts (`health.lua`) in a sandbox on LuaJIT.

Called by `gitops_tasks.health.customizations` for every object whose kind has a script. A script
sees the live object as the global `obj` and returns a table `{status = ..., message = ...}`, as in
Argo CD, so its users bring their scripts unchanged. The object is converted as Argo CD's
gopher-lua conversion does: objects become tables, JSON arrays 1-based sequences, null is nil
(the key is absent), an empty object or array an empty table.

The sandbox, since scripts come from a ConfigMap anyone with edit rights on it can change:

- Scripts see only a fresh environment per run: the base functions that cannot reach outside
  (no `load*`, `dofile`, `require`, `module`, `print`, `collectgarbage`, `debug`, `io`,
  `package`, `jit`, `coroutine`), copies of `string` (without `dump`), `table` and `math`, and an
  `os` with `time`, `date` and `clock` only. `getmetatable` refuses strings, whose metatable is
  shared by every script.
- Python is out of reach: the runtime is made without `python.eval` and builtins, the `python`
  global is removed, no Python object is ever passed in (the object is copied into Lua tables),
  and an attribute filter refuses any attribute access should one slip through.
- Time: a count hook checks the CPU clock every 1000 instructions and stops the script past its
  limit (1 s by default, Argo CD's). JIT compilation is off in this runtime, because compiled
  traces do not call hooks; health scripts are small and the interpreter is fast enough. `pcall`
  cannot swallow the stop: the wrappers scripts get raise it again.
- Memory: the same hook stops a script that grows the heap by more than 64 MiB, and
  `string.rep` refuses results over 1 MiB (one call, no instruction count to catch it).

Every failure (syntax error, runtime error, time or memory limit, a result that is not a table, a
status Argo CD does not know) comes back as `ScriptError` with the text to show; the caller turns
it into Unknown. One runtime per thread: a LuaRuntime is not to be shared between threads.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Mapping
from datetime import date, datetime
from typing import Any

from lupa import luajit21

from .status import Health, HealthStatus

DEFAULT_TIME_LIMIT = 1.0
_MAX_COMPILED = 256
_MAX_MESSAGE = 2000

# Lua side of the sandbox, run once per runtime. Returns (compile, new_env, run).
_SETUP = r"""
local MAX_REP = 1024 * 1024
local MAX_GROWTH_KB = 64 * 1024
local TIMEOUT = "script timed out"

local sethook, clock, collect = debug.sethook, os.clock, collectgarbage
local pcall_, xpcall_, error_, type_, pairs_ = pcall, xpcall, error, type, pairs
local getmetatable_, setfenv_, loadstring_ = getmetatable, setfenv, loadstring
local rep = string.rep

-- Compiled traces never call hooks: without this an empty loop would run for ever.
jit.off()
python = nil

local deadline, limit_kb, stopped = 0, 0, nil

local function hook()
  if clock() > deadline then
    stopped = TIMEOUT
  elseif collect("count") > limit_kb then
    stopped = "script used too much memory"
  end
  if stopped then error_(stopped, 0) end
end

-- A stop raised inside pcall must not be swallowed: raise it again once pcall returns.
local function again(...)
  if stopped then error_(stopped, 0) end
  return ...
end

local function copy(t)
  local c = {}
  for k, v in pairs_(t) do c[k] = v end
  return c
end

local safe_string = copy(string)
safe_string.dump = nil
safe_string.rep = function(s, n, sep)
  local len = #tostring(s) + (sep and #tostring(sep) or 0)
  if type_(n) == "number" and len * n > MAX_REP then
    error_("string.rep: result longer than " .. MAX_REP .. " bytes", 2)
  end
  return rep(s, n, sep)
end
-- Method calls on strings ("x"):rep(...) go through the shared string metatable.
string.rep = safe_string.rep
string.dump = nil

local base = {
  assert = assert, error = error, ipairs = ipairs, next = next, pairs = pairs,
  select = select, tonumber = tonumber, tostring = tostring, type = type, unpack = unpack,
  rawequal = rawequal, rawget = rawget, rawset = rawset, setmetatable = setmetatable,
  getmetatable = function(v)
    if type_(v) == "string" then return nil end
    return getmetatable_(v)
  end,
  pcall = function(...) return again(pcall_(...)) end,
  xpcall = function(...) return again(xpcall_(...)) end,
}

local function new_env(obj)
  local env = copy(base)
  env.string = copy(safe_string)
  env.table = copy(table)
  env.math = copy(math)
  env.os = {time = os.time, date = os.date, clock = os.clock}
  env._G = env
  env.obj = obj
  return env
end

local function compile(text, name)
  local fn, err = loadstring_(text, name)
  if not fn then return false, err end
  return true, fn
end

local function finish(ok, ...)
  sethook()
  if stopped then return false, stopped end
  return ok, ...
end

local function run(fn, obj, seconds)
  setfenv_(fn, new_env(obj))
  stopped = nil
  collect("collect")
  limit_kb = collect("count") + MAX_GROWTH_KB
  deadline = clock() + seconds
  sethook(hook, "", 1000)
  return finish(pcall_(fn))
end

return compile, run
"""


class ScriptError(Exception):
    """A health script could not give a health: the message says why (Lua's own error text)."""


def _refuse_attributes(obj: object, name: object, is_setting: bool) -> object:
    raise AttributeError("access to Python objects is not allowed")


class _Runtime:
    """One sandboxed LuaJIT state with its compiled scripts, for one thread."""

    def __init__(self) -> None:
        self.lua = luajit21.LuaRuntime(
            register_eval=False,
            register_builtins=False,
            unpack_returned_tuples=True,
            attribute_filter=_refuse_attributes,
        )
        self._compile, self._run = self.lua.execute(_SETUP)
        # Scripts are few and change rarely: cache the compiled chunk by its text.
        self._compiled: OrderedDict[tuple[str, str], Any] = OrderedDict()

    def compiled(self, script: str, name: str) -> Any:
        key = (script, name)
        fn = self._compiled.get(key)
        if fn is not None:
            self._compiled.move_to_end(key)
            return fn
        ok, fn = self._compile(script, f"={name}")
        if not ok:
            raise ScriptError(f"syntax error: {fn}")
        self._compiled[key] = fn
        if len(self._compiled) > _MAX_COMPILED:
            self._compiled.popitem(last=False)
        return fn

    def to_lua(self, value: Any) -> Any:
        """A copy of a JSON-like value as Lua values (never a Python object inside Lua)."""
        if value is None or isinstance(value, bool | int | float | str):
            return value
        if isinstance(value, Mapping):
            table = self.lua.table()
            for key, item in value.items():
                if item is not None:  # null: the key is absent, as Argo CD's conversion does
                    table[str(key)] = self.to_lua(item)
            return table
        if isinstance(value, list | tuple):
            table = self.lua.table()
            index = 1
            for item in value:
                if item is not None:
                    table[index] = self.to_lua(item)
                    index += 1
            return table
        if isinstance(value, datetime | date):
            # YAML files (the CLI) may hold unquoted timestamps; the API server sends strings.
            text = value.isoformat()
            return text.replace("+00:00", "Z") if isinstance(value, datetime) else text
        return str(value)

    def run(self, script: str, name: str, obj: Mapping[str, Any], time_limit: float) -> Any:
        fn = self.compiled(script, name)
        out = self._run(fn, self.to_lua(obj), time_limit)
        # Lua's several results come as a tuple, a single one (a script returning nothing) bare.
        ok, *rest = out if isinstance(out, tuple) else (out,)
        if not ok:
            raise ScriptError(_trim(str(rest[0]) if rest else "script failed"))
        return rest[0] if rest else None


_local = threading.local()


def _runtime() -> _Runtime:
    runtime: _Runtime | None = getattr(_local, "runtime", None)
    if runtime is None:
        runtime = _Runtime()
        _local.runtime = runtime
    return runtime


def _trim(text: str) -> str:
    return text if len(text) <= _MAX_MESSAGE else text[: _MAX_MESSAGE - 3] + "..."


_STATUSES = {s.value: s for s in HealthStatus}


def run_health_script(
    script: str,
    obj: Mapping[str, Any],
    *,
    name: str = "health.lua",
    time_limit: float = DEFAULT_TIME_LIMIT,
) -> Health | None:
    """The health a script gives `obj`. None when it returns nil or an empty table (the kind then
    has no health notion, like a ConfigMap); Unknown, with Argo CD's message, when `status` is
    not one of the six. Raises ScriptError when the script fails, is stopped, or returns
    something that is not a table; `name` is how Lua's error messages name the script."""
    try:
        result = _runtime().run(script, name, obj, time_limit)
    except ScriptError:
        raise
    except luajit21.LuaError as exc:
        raise ScriptError(_trim(str(exc))) from None
    if result is None:
        return None
    if luajit21.lua_type(result) != "table":
        kind = luajit21.lua_type(result) or type(result).__name__
        raise ScriptError(f"expected a table from the script, got {kind}")
    status = result["status"]
    message = result["message"]
    if status is None and message is None and next(iter(result), None) is None:
        return None
    if not isinstance(status, str) or status not in _STATUSES:
        return Health(HealthStatus.UNKNOWN, f"Lua returned an invalid health status: {status!r}")
    if message is None:
        message = ""
    elif isinstance(message, int | float) and not isinstance(message, bool):
        message = f"{message:g}" if isinstance(message, float) else str(message)
    elif not isinstance(message, str):
        kind = luajit21.lua_type(message) or type(message).__name__
        raise ScriptError(f"expected a string message from the script, got {kind}")
    return Health(_STATUSES[status], _trim(message))
