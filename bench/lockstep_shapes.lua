-- Fixed lockstep work for side-by-side timing of two toymoe builds (bench/lockstep_compare.sh): `models` models of one
-- P1 / Fig. 4 shape trained together by toymoe.train_many for `steps` steps, batch 512, load balancing on, mean loss,
-- feature probability 0.5. The work is the same in every build, so CPU seconds (or wall time on a quiet machine)
-- compare directly; the printed checksum (sum of final losses) must agree between builds that keep the bits.
--   toymoe run bench/lockstep_shapes.lua shape=212 models=128 steps=400 threads=1
local shape = tostring(toymoe.param("shape", "212"))
local count = toymoe.param("models", 128)
local steps = toymoe.param("steps", 400)
local threads = toymoe.param("threads", 1)
local shapes = { ["211"] = { 2, 1, 1, 1 }, ["212"] = { 2, 1, 2, 1 }, ["311"] = { 3, 1, 1, 1 }, ["312"] = { 3, 1, 2, 1 },
  ["313"] = { 3, 1, 3, 1 }, ["321"] = { 3, 2, 1, 1 }, ["322"] = { 3, 2, 2, 1 }, ["323"] = { 3, 2, 3, 1 },
  ["323k2"] = { 3, 2, 3, 2 } }
local s = assert(shapes[shape], "unknown shape " .. shape)
local models, datas = {}, {}
for i = 1, count do
  models[i] = toymoe.model{ n_features = s[1], n_hidden = s[2], n_experts = s[3], n_active_experts = s[4] }
  datas[i] = toymoe.data{ n_features = s[1], feature_probability = 0.5, relative_importance = 0.1 + 0.05 * (i % 58) }
end
local results = toymoe.train_many(models, { data = datas, steps = steps, batch_size = 512, loss = "mean",
  load_balancing = true, load_balancing_alpha = 0.01, history_every = steps, threads = threads })
local sum = 0
for _, r in ipairs(results) do sum = sum + r.final_loss end
print(string.format("shape %s models %d steps %d model-steps %d checksum %.17g", shape, count, steps, count * steps, sum))
