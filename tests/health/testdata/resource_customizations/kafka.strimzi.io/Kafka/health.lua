-- Strimzi Kafka: Ready True is Healthy, NotReady True is still being reconciled, and Ready False
-- means the operator gave up on this generation. Warning conditions (deprecated fields, ...)
-- are informational and skipped.
if obj.status == nil or obj.status.conditions == nil then
  return {status = "Progressing", message = "Waiting for the Kafka cluster to be reconciled"}
end
if obj.status.observedGeneration ~= nil and obj.metadata.generation ~= nil
    and obj.status.observedGeneration < obj.metadata.generation then
  return {status = "Progressing", message = "Waiting for the operator to observe the latest spec"}
end
for _, condition in ipairs(obj.status.conditions) do
  if condition.type == "Warning" then
    goto continue
  end
  if condition.type == "Ready" and condition.status == "True" then
    return {status = "Healthy", message = condition.message or ""}
  end
  if condition.type == "NotReady" and condition.status == "True" then
    return {status = "Progressing", message = condition.message or condition.reason or ""}
  end
  if condition.type == "Ready" and condition.status == "False" then
    return {status = "Degraded", message = condition.message or condition.reason or ""}
  end
  ::continue::
end
return {status = "Progressing", message = "Waiting for the Kafka cluster to be reconciled"}
