-- A dense toy model (Elhage et al.'s ReLU-output model): 20 features, 6 hidden dimensions, sparse inputs.
-- Run: toymoe run scripts/examples/dense.lua [p=0.1] [steps=10000] --out results/dense
local n, m = 20, 6
local p = toymoe.param("p", 0.1)
local model = toymoe.model{ n_features = n, n_hidden = m }
local data = toymoe.data{ feature_probability = p, importance = toymoe.geometric(0.7, n) }
local r = toymoe.train(model, { data = data, steps = toymoe.param("steps", 10000) })

local g = toymoe.metrics.geometry(model)
print(string.format("final loss %.5f: %d of %d features represented in %d dimensions, %d antipodal pairs",
  r.final_loss, g.features_represented, n, m, #g.antipodal_pairs))
model:save("model.npz")
return { final_loss = r.final_loss, features_represented = g.features_represented,
         feature_norms = toymoe.metrics.feature_norms(model) }
