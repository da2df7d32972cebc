-- Fig. 2: a Mixture-of-Experts (3 experts of 2 dimensions, top-1) with the same total width as Fig. 1's dense model.
-- Fig. 2 (docs/PAPER.md#fig2): a Mixture-of-Experts with the same total width as Fig. 1's dense model:
-- n = 20, E = 3 experts of m = 2, top-1, importance 0.7^i, p = 0.1, no load balancing, Xavier router (frozen:
-- with k = 1 the router gets no reconstruction gradient, docs/PAPER.md#router-gradient).
-- The paper: about 8 features represented across experts, interference only inside experts (antipodal pairs),
-- "less interference" than dense.
--
--   toymoe run scripts/paper/fig2_moe.lua [scale=quick|full] --out results/fig2
local scale = toymoe.param("scale", "quick")
assert(scale == "quick" or scale == "full", "scale must be 'quick' or 'full', got " .. tostring(scale))
local steps = toymoe.param("steps", scale == "full" and 10000 or 3000)
local seeds = toymoe.param("seeds", scale == "full" and 5 or 3)
local n, m, E = 20, 2, 3
local data = toymoe.data{ feature_probability = 0.1, importance = toymoe.geometric(0.7, n) }
local M = toymoe.metrics

-- Files, plots, reports and printed lines count from 0 like numpy and the authors' code (expert 0, feature 0
-- the most important); Lua lists count from 1. `zero_based` converts a list of 1-based indices (or index pairs).
local function zero_based(list)
  local out = {}
  for k, v in ipairs(list) do out[k] = type(v) == "table" and zero_based(v) or v - 1 end
  return out
end

local function measure(model)
  local experts, represented_any, npairs, dedicated = {}, {}, 0, 0
  for e = 1, E do
    local g = M.geometry(model, e)
    -- Feature indices 0-based, as on the bar chart's x axis; experts[1] is expert 0 (JSON position 0).
    experts[e] = { represented = zero_based(g.represented), dedicated = zero_based(g.dedicated),
                   antipodal_pairs = zero_based(g.antipodal_pairs),
                   features_represented = g.features_represented, features_per_dimension = g.features_per_dimension }
    for _, i in ipairs(g.represented) do represented_any[i] = true end
    npairs = npairs + #g.antipodal_pairs
    dedicated = dedicated + #g.dedicated
  end
  local total = 0
  for _ in next, represented_any do total = total + 1 end
  return experts, total, npairs, dedicated
end

local runs = {}
for s = 1, seeds do
  local model = toymoe.model{ n_features = n, n_hidden = m, n_experts = E, n_active_experts = 1 }
  local gate0 = model:get("gate")
  local r = toymoe.train(model, { data = data, steps = steps, batch_size = 1024, loss = "sum" })
  local experts, total, npairs, ndedicated = measure(model)
  runs[#runs + 1] = { model = model, loss = r.final_loss, experts = experts, total = total, pairs = npairs,
                      dedicated = ndedicated, fpd = M.features_per_dimension(model, { data = data }) }
  print(string.format("replicate %d: loss %.5f, %d distinct features represented, %d antipodal pairs (all inside experts)",
    s - 1, r.final_loss, total, npairs))
end
table.sort(runs, function(a, b) return a.loss < b.loss end)
local shown = runs[(#runs + 1) // 2]
local model = shown.model
model:save("model.npz")

local bar_panels, gram_panels = {}, {}
local summed = {}
for i = 1, n do summed[i] = {} for j = 1, n do summed[i][j] = 0 end end
for e = 1, E do
  bar_panels[e] = { title = "expert " .. (e - 1), values = M.feature_norms(model, e), color_values = M.polysemanticity(model, e) }
  local G = M.gram(model, e)
  gram_panels[e] = { title = "expert " .. (e - 1), matrix = G }
  for i = 1, n do for j = 1, n do summed[i][j] = summed[i][j] + G[i][j] end end
end
gram_panels[E + 1] = { title = "sum over experts", matrix = summed }
toymoe.plot.bars{ file = "fig2a_norms.svg", title = "Fig. 2a: feature norms per expert (E=3, m=2, k=1, p=0.1)",
  panels = bar_panels, marker = m - 0.5, x_label = "feature i", y_label = "‖Wᵢ‖", color_label = "Superposition",
  marker_label = string.format("m − 0.5 (m = %d)", m), columns = 3 }
toymoe.plot.heatmap{ file = "fig2b_gram.svg", title = "Fig. 2b: Wₑ Wₑᵀ per expert and summed", panels = gram_panels,
  range = { -1, 1 }, columns = 4 }

local per_seed = { loss = {}, features_represented = {}, antipodal_pairs = {} }
for _, r in ipairs(runs) do
  table.insert(per_seed.loss, r.loss)
  table.insert(per_seed.features_represented, r.total)
  table.insert(per_seed.antipodal_pairs, r.pairs)
end
local summary = {
  figure = "Fig. 2", scale = scale, steps = steps, seeds = seeds,
  experts = shown.experts,
  features_represented = shown.total,
  dedicated = shown.dedicated,
  antipodal_pairs = shown.pairs,
  features_per_dimension = shown.fpd,
  final_loss = shown.loss,
  per_seed = per_seed,
  paper = { features_represented = 8, antipodal_pairs = 5, note = "interference only inside experts (reviewer 3's reading)" },
  -- About 8 features (6-10), every represented feature dedicated or in an antipodal pair inside its expert.
  reproduced = shown.total >= 6 and shown.total <= 10 and shown.pairs >= 2,
}
summary.verdict_text = string.format(
  "Fig. 2 verdict: %s. Compared the median-loss model of %d seed(s): distinct features represented across %d experts %d "
    .. "(paper about 8, need 6-10), antipodal pairs inside experts %d (paper 5, need >= 2)%s",
  summary.reproduced and "reproduced" or "differs", seeds, E, shown.total, shown.pairs,
  summary.reproduced and ""
    or (steps < 2000 and string.format("; expected with %d steps: the geometry forms by about 2000", steps)
    or "; not expected at this scale (the geometry forms by about 2000 steps): a real difference"))
toymoe.save_json("summary.json", summary)
local function list_text(list)
  local parts = {}
  for _, v in ipairs(list) do parts[#parts + 1] = type(v) == "table" and ("(" .. table.concat(v, ", ") .. ")") or tostring(v) end
  return #parts > 0 and table.concat(parts, ", ") or "none"
end
local expert_rows = {}
for e, x in ipairs(shown.experts) do
  expert_rows[e] = { tostring(e - 1), list_text(x.represented), list_text(x.dedicated), list_text(x.antipodal_pairs) }
end
toymoe.plot.report{
  file = "index.html", title = "Fig. 2: superposition in a toy MoE with the same total width",
  introduction = "n = 20, E = 3 experts with m = 2 each, top-1 routing, importance 0.7^i, density 0.1 (docs/PAPER.md#fig2).",
  figures = {
    { heading = "Feature norms per expert", file = "fig2a_norms.svg",
      caption = string.format("%d distinct features represented across experts (paper: about 8)", shown.total),
      tables = { { caption = "Features per expert (0-based, as on the bars)",
                   header = { "expert", "represented", "dedicated", "antipodal pairs" }, rows = expert_rows } } },
    { heading = "Gram matrices", file = "fig2b_gram.svg", caption = "per expert, and summed: interference stays inside experts" },
  },
  summary = summary,
}
print(summary.verdict_text)
return summary
