-- Toy Models of Superposition, intro figure: 5 features in 2 dimensions as the features get sparser.
-- "Toy Models of Superposition" (Elhage et al. 2022) intro figure (docs/PAPER.md#tms), the dense predecessor of the
-- MoE paper: n = 5 features, m = 2 hidden dimensions, importance 0.9^i, densities p_k = 20^(−k/9) for k = 0…9
-- (sparsity 0 … 0.95), TMS setup: ReLU-output model x̂ = ReLU(WᵀW x + b) (an E = 1 model here), mean-over-features
-- importance-weighted loss, AdamW 1e-3 (wd 0.01), batch 1024, Xavier-normal W, b = 0.
-- The paper's picture: dense → the two most important features on orthogonal axes, the rest dropped; ~80 % sparsity
-- → two antipodal pairs (the least important feature dropped); high sparsity → more features packed. A pentagon needs
-- uniform importance with this setup, so an extra panel trains uniform importance at density 0.05 (expect all 5).
--
--   toymoe run scripts/tms/intro.lua [scale=quick|full] [steps=N] --out results/tms_intro --jobs 2
--
-- 11 models (10 densities + the uniform pentagon). quick: 5000 steps each (≈ 10 s with --jobs 2);
-- full: 10,000 steps (the TMS notebook).
local scale = toymoe.param("scale", "quick")
assert(scale == "quick" or scale == "full", "scale must be 'quick' or 'full', got " .. tostring(scale))
local steps = toymoe.param("steps", scale == "full" and 10000 or 5000)
local n, m = 5, 2
local M = toymoe.metrics

local cells = {}
for k = 0, 9 do cells[#cells + 1] = { k = k, uniform = 0 } end
cells[#cells + 1] = { k = 9, uniform = 1 }

toymoe.sweep{
  name = "tms_intro",
  cells = cells,
  run = function(cell)
    local p = 20 ^ (-cell.k / 9)
    local importance = cell.uniform == 1 and toymoe.geometric(1, n) or toymoe.geometric(0.9, n)
    local model = toymoe.model{ n_features = n, n_hidden = m, init = { W = "xavier", b_final = "zero" } }
    local r = toymoe.train(model, { data = toymoe.data{ feature_probability = p, importance = importance },
                                    steps = steps, batch_size = 1024, loss = "mean" })
    local g = M.geometry(model)
    -- Feature indices 0-based in the cell files and the summary (like numpy); Lua's lists count from 1.
    local pairs, represented = {}, {}
    for j, pr in ipairs(g.antipodal_pairs) do pairs[j] = { pr[1] - 1, pr[2] - 1 } end
    for j, i in ipairs(g.represented) do represented[j] = i - 1 end
    return { density = p, sparsity = 1 - p, final_loss = r.final_loss, W = model:W(1), importance = importance,
             norms = M.feature_norms(model), features_represented = g.features_represented,
             represented = represented, n_antipodal_pairs = #g.antipodal_pairs, antipodal_pairs = pairs,
             n_dedicated = #g.dedicated, bias = model:get("b_final")[1] }
  end,
  finish = function(rows)
    local panels, per_density, trows = {}, {}, {}
    local uniform
    for _, row in ipairs(rows) do
      local res = row.replicates[1]
      local title = row.cell.uniform == 1 and string.format("uniform importance, S = %.2f", res.sparsity)
        or string.format("S = %.2f (p = %.3f)", res.sparsity, res.density)
      panels[#panels + 1] = { title = title, W = res.W, importance = res.importance,
        footnote = string.format("%d represented, %d antipodal pair(s)", res.features_represented, res.n_antipodal_pairs) }
      local entry = { density = res.density, sparsity = res.sparsity, final_loss = res.final_loss,
                      features_represented = res.features_represented, represented = res.represented,
                      antipodal_pairs = res.n_antipodal_pairs, antipodal_pair_list = res.antipodal_pairs,
                      dedicated = res.n_dedicated, norms = res.norms }
      if row.cell.uniform == 1 then uniform = entry else per_density[#per_density + 1] = entry end
      trows[#trows + 1] = { row.cell.uniform == 1 and "uniform" or "0.9^i", res.density, res.sparsity,
                            res.features_represented, res.n_antipodal_pairs, res.final_loss }
    end
    toymoe.plot.vectors{ file = "tms_intro.svg", panels = panels, columns = 4, extent = 1.4,
      title = "TMS intro: Wᵢ ∈ ℝ² per feature (n = 5, m = 2), colour = importance ÷ panel max" }
    local dense, sparsest = per_density[1], per_density[#per_density]
    local max_pairs, pairs_at = 0, nil
    for _, e in ipairs(per_density) do
      if e.antipodal_pairs > max_pairs then max_pairs, pairs_at = e.antipodal_pairs, e.sparsity end
    end
    -- Dense: the two most important features should sit on orthogonal axes (cosine ≈ 0).
    local W1, W2 = rows[1].replicates[1].W[1], rows[1].replicates[1].W[2]
    local dense_cos = (W1[1] * W2[1] + W1[2] * W2[2]) /
      math.max(1e-12, math.sqrt(W1[1] ^ 2 + W1[2] ^ 2) * math.sqrt(W2[1] ^ 2 + W2[2] ^ 2))
    local summary = {
      figure = "TMS intro", dense_top2_cosine = dense_cos, scale = scale, steps = steps, per_density = per_density, uniform_pentagon = uniform,
      dense_features_represented = dense.features_represented,
      sparsest_features_represented = sparsest.features_represented,
      max_antipodal_pairs = max_pairs, max_antipodal_pairs_at_sparsity = pairs_at,
      uniform_pentagon_features_represented = uniform.features_represented,
      paper = { dense = "2 features, orthogonal", ["S=0.8"] = "2 antipodal pairs, least important dropped",
                sparse = "more features packed; pentagon (5 features) with uniform importance" },
    }
    summary.reproduced = dense.features_represented <= 3 and sparsest.features_represented >= 4
      and max_pairs >= 2 and uniform.features_represented == 5
    toymoe.save_json("summary.json", summary)
    toymoe.plot.report{ file = "index.html", title = "Toy Models of Superposition: intro figure",
      introduction = "n = 5, m = 2, importance 0.9^i, densities 20^(−k/9), mean loss, batch 1024, " .. steps
        .. " steps, b = 0 init (docs/PAPER.md#tms). The last panel uses uniform importance at density 0.05.",
      figures = { { heading = "Feature vectors", file = "tms_intro.svg",
        caption = "Each arrow is a feature's row Wᵢ; represented = ‖Wᵢ‖ > 0.5" } },
      tables = { { caption = "Per model", header = { "importance", "density", "sparsity", "represented",
        "antipodal pairs", "final loss" }, rows = trows, decimals = 4 } },
      summary = { dense_features_represented = summary.dense_features_represented,
                  sparsest_features_represented = summary.sparsest_features_represented,
                  max_antipodal_pairs = max_pairs, uniform_pentagon_features_represented = uniform.features_represented,
                  reproduced = summary.reproduced } }
    summary.verdict_text = string.format(
      "TMS intro verdict: %s. Compared with the paper's figure: dense data keeps %d features (paper 2, need <= 3); the "
        .. "sparsest keeps %d (need >= 4); up to %d antipodal pairs at S = %.2f (paper 2 at S = 0.8, need >= 2); uniform "
        .. "importance at density 0.05 gives %d of 5 features (paper: a pentagon, need 5)%s",
      summary.reproduced and "reproduced" or "differs", dense.features_represented, sparsest.features_represented,
      max_pairs, pairs_at or 0, uniform.features_represented,
      (summary.reproduced or steps >= 10000) and ""
        or string.format("; %d steps instead of 10,000: a pentagon can still be forming, rerun with scale=full before reading this as a miss", steps))
    toymoe.save_json("summary.json", summary)
    print(summary.verdict_text)
    return summary
  end,
}
