-- Custom initializations: a K-hot router written by a Lua function, and W set from a table.
-- Expert e listens to features (e-1)*K+1 .. e*K (the "ordered K-hot" gate), written entry by entry.
local n, E = 8, 2
local K = n // E
local model = toymoe.model{ n_features = n, n_hidden = 2, n_experts = E }
model:init("gate", function(e, i) return (i - 1) // K + 1 == e and 1.0 or 0.0 end)
model:init("b_final", "zero")

-- Every feature routes to its owner expert:
for i = 1, n do
  local x = {}
  for j = 1, n do x[j] = (j == i) and 1 or 0 end
  assert(model:route(x).selected[1] == (i - 1) // K + 1)
end
print(tostring(model))
print("gate of expert 0:", table.concat(model:get("gate")[1], " "))  -- Lua's [1] is expert 0
