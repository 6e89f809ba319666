-- cert-manager Certificate: the Ready condition decides, except while Issuing is True (a first
-- issue or a renewal is under way, and Ready may still describe the old certificate).
local waiting = {status = "Progressing", message = "Waiting for certificate"}
if obj.status == nil or obj.status.conditions == nil then
  return waiting
end
local ready, issuing = nil, nil
for _, condition in ipairs(obj.status.conditions) do
  if condition.type == "Ready" then
    ready = condition
  elseif condition.type == "Issuing" then
    issuing = condition
  end
end
if issuing ~= nil and issuing.status == "True" then
  return {status = "Progressing", message = issuing.message or "Issuing certificate"}
end
if ready == nil then
  return waiting
end
if ready.status == "True" then
  return {status = "Healthy", message = ready.message}
end
if ready.status == "False" then
  return {status = "Degraded", message = ready.message}
end
return {status = "Progressing", message = ready.message}
