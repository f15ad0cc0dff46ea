-- Argo CD health check for the Gatehouse kinds (DatabaseAccess, Guardrail, MaskingPolicy), which all
-- report status the same way: observedGeneration and Ready / Reconciling / Stalled conditions.
-- Lua 5.1, as Argo CD runs it (gopher-lua); `obj` is the live object.
local hs = { status = "Progressing", message = "Waiting for the Gatehouse operator to reconcile" }

local function condition(conditionType)
  if obj.status == nil or obj.status.conditions == nil then
    return nil
  end
  for _, c in ipairs(obj.status.conditions) do
    if c.type == conditionType then
      return c
    end
  end
  return nil
end

local function describe(c)
  if c.message ~= nil and c.message ~= "" then
    return c.message
  end
  return c.reason or ""
end

if obj.status == nil then
  return hs
end

local generation = obj.metadata.generation
local observed = obj.status.observedGeneration
if generation ~= nil and (observed == nil or observed < generation) then
  hs.message = "Waiting for the Gatehouse operator to observe generation " .. generation
  return hs
end

local reconciling = condition("Reconciling")
if reconciling ~= nil and reconciling.status == "True" then
  hs.message = describe(reconciling)
  return hs
end

local stalled = condition("Stalled")
if stalled ~= nil and stalled.status == "True" then
  hs.status = "Degraded"
  hs.message = describe(stalled)
  return hs
end

local ready = condition("Ready")
if ready ~= nil and ready.status == "False" then
  hs.status = "Degraded"
  hs.message = describe(ready)
  return hs
end

if ready ~= nil and ready.status == "True" then
  -- A Ready condition written for an older generation says nothing about the current spec.
  if generation ~= nil and ready.observedGeneration ~= nil and ready.observedGeneration < generation then
    hs.message = "Waiting for the Gatehouse operator to observe generation " .. generation
    return hs
  end
  hs.status = "Healthy"
  hs.message = describe(ready)
  return hs
end

hs.message = "Waiting for the Ready condition"
return hs
