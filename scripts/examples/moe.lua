-- A Mixture-of-Experts toy model with the same total width as dense.lua: 3 experts of 2 dimensions, top-1.
-- Run: toymoe run scripts/examples/moe.lua --out results/moe
local n = 20
local model = toymoe.model{ n_features = n, n_hidden = 2, n_experts = 3, n_active_experts = 1 }
local data = toymoe.data{ feature_probability = 0.1, importance = toymoe.geometric(0.7, n) }
local r = toymoe.train(model, { data = data, steps = toymoe.param("steps", 10000) })

print(tostring(model), "final loss", r.final_loss)
for e = 1, model.n_experts do
  local g = toymoe.metrics.geometry(model, e)
  -- Printed indices count from 0 (like the files and plots); Lua's e and i count from 1.
  local features = {}
  for k, i in ipairs(g.represented) do features[k] = i - 1 end
  print(string.format("expert %d: represents %s", e - 1, table.concat(features, " ")))
end
print("features per dimension (gate-weighted):", toymoe.metrics.features_per_dimension(model, { data = data }))
