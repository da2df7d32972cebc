-- A training hook: watch the loss and feature 0's norm every 500 steps, and stop early on a plateau.
-- Feature 0 is the most important. The hook's `step` counts from 1 like everything in Lua; printed lines count
-- from 0 like every file and plot of ToyMoE (so `step - 1`, and Lua's feature [1] is feature 0).
local model = toymoe.model{ n_features = 5, n_hidden = 2 }
local data = toymoe.data{ feature_probability = 0.2, importance = toymoe.geometric(0.9, 5) }
local last = math.huge
local r = toymoe.train(model, {
  data = data, steps = 5000, hook_every = 500,
  hook = function(step, loss, lr, m)
    local norm = toymoe.metrics.feature_norms(m)[1]
    print(string.format("step %5d  loss %.5f  lr %.0e  ‖W₀‖ %.3f", step - 1, loss, lr, norm))
    if math.abs(last - loss) < 1e-7 then return false end   -- stop
    last = loss
  end,
})
print("stopped early:", r.stopped_early, "after", r.steps, "steps")
