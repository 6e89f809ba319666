-- Argo Rollouts: the controller (1.0 and later) sums its verdict up in status.phase; until it
-- has seen the latest spec, or while the rollout is paused, that verdict is not the answer.
if obj.status == nil then
  return {status = "Progressing", message = "Waiting for rollout to be observed"}
end
-- Rollouts writes observedGeneration as a string.
if obj.metadata.generation ~= nil and obj.status.observedGeneration ~= nil
    and tostring(obj.status.observedGeneration) ~= tostring(obj.metadata.generation) then
  return {status = "Progressing", message = "Waiting for rollout spec update to be observed"}
end
if obj.spec.paused == true then
  return {status = "Suspended", message = "Rollout is paused"}
end
local phase = obj.status.phase
local message = obj.status.message or ""
if phase == "Paused" then
  return {status = "Suspended", message = message}
elseif phase == "Healthy" or phase == "Degraded" or phase == "Progressing" then
  return {status = phase, message = message}
end
return {status = "Progressing", message = "Waiting for rollout to report its phase"}
