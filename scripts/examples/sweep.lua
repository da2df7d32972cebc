-- A small sweep of the 2-feature, 1-dimension dense model over sparsity and relative importance.
-- A small sweep: the 2-feature, 1-dimension dense model over sparsity S and relative importance r, 3 restarts
-- per cell, keeping the lowest final loss (as the paper's phase diagrams do).
-- Run: toymoe run scripts/examples/sweep.lua --out results/sweep --jobs 2     (add --resume after an interruption)
toymoe.sweep{
  name = "phase_2x1",
  grid = { S = { 0.1, 0.5, 0.9 }, r = { 0.5, 1.0, 2.0 } },
  order = { "S", "r" },
  replicates = 3,
  select = { minimize = "final_loss" },
  run = function(cell, ctx)
    local m = toymoe.model{ n_features = 2, n_hidden = 1 }
    local data = toymoe.data{ n_features = 2, feature_probability = 1 - cell.S, relative_importance = cell.r }
    local r = toymoe.train(m, { data = data, steps = toymoe.param("steps", 2000), batch_size = 512, loss = "mean" })
    return {
      final_loss = r.final_loss,
      norm_last = toymoe.metrics.feature_norms(m)[2],
      phase = toymoe.metrics.classify_feature(m, 1, 2),
    }
  end,
}
