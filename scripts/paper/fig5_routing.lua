-- Fig. 5: routing regions of a 2-feature MoE under three router initializations (zero, Xavier, diagonal).
-- Fig. 5 of "Sparsity and Superposition in Mixture of Experts" (docs/PAPER.md#fig5): routing regions of a 2-feature MoE
-- under three router initializations. n = 2, m = 1, E = 3, k = 1, no load balancing, importance 1, density
-- p = 0.5, the early-stop trainer (batch 100, ≤ 10,000 steps, lr × 0.1 whenever the minibatch loss < 0.015, stop
-- when it is < 0.01; sum-over-features loss). Router inits: zero, Xavier, diagonal (G[1,1] = G[2,2] = 1, rest 0).
-- Each model's routing map (top-1 expert on a 100×100 grid over [0,1]²) is drawn at the start and at the end of
-- training. The claims: regions are cones through the origin (linear logits, no bias); with k = 1 the router gets
-- no reconstruction gradient (docs/PAPER.md#router-gradient), so the end map equals the start map; the diagonal router splits along
-- x1 = x2; the zero router sends everything to one expert (ties → lowest index) and pays for it in loss.
--
--   toymoe run scripts/paper/fig5_routing.lua [scale=quick|full] [steps=N] [old_es=true] --out results/fig5
--
-- quick = full (3 models, ≤ 10,000 steps of batch 100: about 1 s in all); quick only caps the steps at 5,000.
-- old_es=true: the old experiment-script variant (p = 1, and the model labelled "zero" actually keeps its Xavier
-- gate, the diagonal is written over a Xavier gate; docs/PAPER.md#disagreements). Reference (old ES, p = 1): Xavier "base" 2 sectors,
-- loss 0.028; "zero" (really Xavier, one expert for the whole quadrant) loss 0.075.
local scale = toymoe.param("scale", "quick")
assert(scale == "quick" or scale == "full", "scale must be 'quick' or 'full', got " .. tostring(scale))
local steps = toymoe.param("steps", scale == "full" and 10000 or 5000)
local grid = toymoe.param("grid", 100)
local old_es = toymoe.param("old_es", false)
old_es = old_es == true or old_es == "true" or old_es == 1
local p = old_es and 1.0 or 0.5
local n, m, E = 2, 1, 3
local data = toymoe.data{ n_features = n, feature_probability = p }
local M = toymoe.metrics

local inits = {
  { name = "zero", label = old_es and "\"zero\" (old ES: Xavier kept)" or "zero gate",
    init = { gate = old_es and "xavier" or "zero" } },
  { name = "xavier", label = "Xavier gate", init = { gate = "xavier" } },
  { name = "diagonal", label = old_es and "diagonal over Xavier" or "diagonal gate",
    init = { gate = "diagonal", overlay_gate = old_es or nil } },
}

-- Map helpers. routing_map is row-major with rows = x2 (row 1 at x2 = 0), coordinates = linspace(0, 1, grid).
local function to_rows(map)
  local rows = {}
  for r = 1, map.grid do
    local row = {}
    for c = 1, map.grid do row[c] = map.experts[(r - 1) * map.grid + c] end
    rows[r] = row
  end
  return rows
end

local function agreement(a, b)
  local same = 0
  for i = 1, #a.experts do if a.experts[i] == b.experts[i] then same = same + 1 end end
  return same / #a.experts
end

-- Cones: the expert at grid point (c, r) equals the expert at (2c−1, 2r−1) (the point scaled by 2 lands on the grid
-- exactly) and at random positive rescalings routed directly.
local function cone_fraction(model, map)
  local G = map.grid
  local checked, same = 0, 0
  for r = 1, G do
    for c = 1, G do
      if (r > 1 or c > 1) and 2 * r - 1 <= G and 2 * c - 1 <= G then
        checked = checked + 1
        if map.experts[(r - 1) * G + c] == map.experts[(2 * r - 2) * G + 2 * c - 1] then same = same + 1 end
      end
    end
  end
  local routed_checked, routed_same = 0, 0
  for _ = 1, 400 do
    local r, c = math.random(1, G), math.random(1, G)
    if r > 1 or c > 1 then
      local x1, x2 = map.coordinates[c], map.coordinates[r]
      local s = 10 ^ (math.random() * 4 - 2)            -- c ∈ [0.01, 100]
      routed_checked = routed_checked + 1
      if model:route({ s * x1, s * x2 }).selected[1] == map.experts[(r - 1) * G + c] then routed_same = routed_same + 1 end
    end
  end
  return (same + routed_same) / (checked + routed_checked)
end

-- Angular sectors: route 2001 rays in the quadrant and count runs of the same expert.
local function sectors(model)
  local runs, last, experts = 0, nil, {}
  for t = 0, 2000 do
    local th = (math.pi / 2) * t / 2000
    local e = model:route({ math.cos(th), math.sin(th) }).selected[1]
    if e ~= last then runs = runs + 1; last = e end
    experts[e] = true
  end
  local used = {}
  -- Expert ids 0-based, as in the plot's legend, the files and the report (Lua's e = 1 is expert 0).
  for e = 1, E do if experts[e] then used[#used + 1] = e - 1 end end
  return runs, used
end

-- Diagonal boundary: expert 1 strictly below x1 = x2 (x1 > x2), expert 2 strictly above.
local function diagonal_fraction(map)
  local G, ok, total = map.grid, 0, 0
  for r = 1, G do
    for c = 1, G do
      if r ~= c then
        total = total + 1
        local want = (c > r) and 1 or 2
        if map.experts[(r - 1) * G + c] == want then ok = ok + 1 end
      end
    end
  end
  return ok / total
end

-- Evaluation loss on a fixed large sample (the final minibatch loss of batch 100 is noisy): Σ_i mean_b (x − x̂)².
local eval_batch = data:sample(8192)
local function eval_loss(model)
  local out = model:forward(eval_batch)
  local total = 0
  for b = 1, #eval_batch do
    for i = 1, n do total = total + (eval_batch[b][i] - out[b][i]) ^ 2 end
  end
  return total / #eval_batch
end

local results, panels_start, panels_end, coords = {}, {}, {}, nil
for idx, spec in ipairs(inits) do
  local model = toymoe.model{ n_features = n, n_hidden = m, n_experts = E, n_active_experts = 1, init = spec.init }
  local gate0 = model:get("gate")
  local start_map = M.routing_map(model, { grid = grid })
  coords = start_map.coordinates
  local start_sectors, start_used = sectors(model)
  local r = toymoe.train(model, { data = data, steps = steps, batch_size = 100, loss = "sum",
                                  early_stop = { drop_loss = 0.015, stop_loss = 0.01 } })
  local end_map = M.routing_map(model, { grid = grid })
  local end_sectors, end_used = sectors(model)
  local gate1 = model:get("gate")
  local res = {
    name = spec.name, final_loss = r.final_loss, first_loss = r.history.loss[1], steps = r.steps,
    stopped_early = r.stopped_early, eval_loss = eval_loss(model),
    end_equals_start = agreement(start_map, end_map),
    sectors_start = start_sectors, sectors_end = end_sectors,
    experts_used_start = start_used, experts_used_end = end_used,
    cone_fraction_start = cone_fraction(model, start_map) , cone_fraction_end = cone_fraction(model, end_map),
    diagonal_boundary_fraction = diagonal_fraction(end_map),
    gate_start = gate0, gate_end = gate1,
  }
  res.cones = res.cone_fraction_end >= 0.999
  results[idx] = res
  model:save(spec.name .. ".npz")
  panels_start[idx] = { title = spec.label .. ": start", classes = to_rows(start_map),
                        footnote = string.format("Loss: %.4f (first step)", res.first_loss) }
  panels_end[idx] = { title = spec.label .. ": end", classes = to_rows(end_map),
                      footnote = string.format("Loss: %.4f (eval %.4f; %d steps%s)", res.final_loss, res.eval_loss, res.steps,
                                               res.stopped_early and ", early stop" or "") }
  print(string.format("%-8s loss %.4f (eval %.4f) after %d steps; end map = start map on %.1f%% of the grid; %d sector(s) %s; cones %.3f",
    spec.name, res.final_loss, res.eval_loss, res.steps, 100 * res.end_equals_start, res.sectors_end,
    "(experts " .. table.concat(end_used, ",") .. ")", res.cone_fraction_end))
end

local panels = {}
for i = 1, #inits do panels[i] = panels_start[i] end
for i = 1, #inits do panels[#inits + i] = panels_end[i] end
toymoe.plot.categories{
  file = "fig5_routing.svg",
  title = string.format("Fig. 5: top-1 expert over (x₀, x₁) ∈ [0,1]², n=2, m=1, E=3, k=1, p=%g", p),
  panels = panels, columns = 3, class_names = { "expert 0", "expert 1", "expert 2" },
  x_values = coords, y_values = coords, x_label = "x₀", y_label = "x₁", legend_title = "expert", origin = "lower",
}

local by = {}
for _, r in ipairs(results) do by[r.name] = r end
local min_equal, all_cones = 1, true
for _, r in ipairs(results) do
  min_equal = math.min(min_equal, r.end_equals_start)
  all_cones = all_cones and r.cones
end
local summary = {
  figure = "Fig. 5", scale = scale, steps_cap = steps, p = p, old_es = old_es, grid = grid,
  models = results,
  final_loss = { zero = by.zero.final_loss, xavier = by.xavier.final_loss, diagonal = by.diagonal.final_loss },
  eval_loss = { zero = by.zero.eval_loss, xavier = by.xavier.eval_loss, diagonal = by.diagonal.eval_loss },
  end_equals_start = { zero = by.zero.end_equals_start, xavier = by.xavier.end_equals_start,
                       diagonal = by.diagonal.end_equals_start },
  sectors = { zero = by.zero.sectors_end, xavier = by.xavier.sectors_end, diagonal = by.diagonal.sectors_end },
  cones = all_cones,
  routing_frozen = min_equal >= 0.99,
  diagonal_boundary_x1_eq_x2 = by.diagonal.diagonal_boundary_fraction,
  zero_loss_ge_xavier = by.zero.final_loss >= by.xavier.final_loss,
  zero_eval_loss_ge_xavier = by.zero.eval_loss >= by.xavier.eval_loss,
  zero_single_expert = #by.zero.experts_used_end == 1,
  paper = {
    expected = "cones through the origin; routing frozen at init for k = 1 (docs/PAPER.md#router-gradient); diagonal splits at x1 = x2; "
      .. "zero init routes everything to one expert (ties → lowest index) with a higher loss than Xavier",
    old_es = { xavier_sectors = 2, xavier_loss = 0.028, zero_label_loss = 0.075,
               note = "old ES used p = 1 and its 'zero' model kept a Xavier gate" },
  },
}
summary.reproduced = summary.cones and summary.routing_frozen
  and (old_es or (summary.diagonal_boundary_x1_eq_x2 >= 0.99
                  and (summary.zero_eval_loss_ge_xavier or summary.zero_single_expert)))
local function yes(v) return v and "yes" or "no" end
summary.verdict_text = string.format(
  "Fig. 5 verdict: %s. Compared with the paper's picture: routing regions are cones through the origin: %s "
    .. "(cone fraction min %.3f, need 1); routing frozen at init (k = 1): %s (end map = start map on >= %.1f%% of the grid, need 99%%)%s; "
    .. "final loss zero init %.4f vs Xavier %.4f (paper: zero higher, old ES 0.075 vs 0.028)%s",
  summary.reproduced and "reproduced" or "differs", yes(all_cones),
  math.min(by.zero.cone_fraction_end, by.xavier.cone_fraction_end, by.diagonal.cone_fraction_end), yes(summary.routing_frozen),
  100 * min_equal,
  old_es and "" or string.format("; diagonal router splits at x₀ = x₁ on %.1f%% of the grid (need 99%%)", 100 * summary.diagonal_boundary_x1_eq_x2),
  by.zero.final_loss, by.xavier.final_loss,
  scale == "quick" and "; quick caps training at 5000 steps (full 10,000): only the losses can differ, a miss of the cones or the frozen routing is real" or "")
toymoe.save_json("summary.json", summary)

local rows = {}
for _, r in ipairs(results) do
  rows[#rows + 1] = { r.name, r.final_loss, r.eval_loss, r.steps, r.end_equals_start, r.sectors_end,
                      table.concat(r.experts_used_end, ","), r.cone_fraction_end, r.diagonal_boundary_fraction }
end
toymoe.plot.report{
  file = "index.html", title = "Fig. 5: routing regions of a 2-feature MoE under three router inits",
  introduction = string.format("n = 2, m = 1, E = 3, k = 1, no LB, importance 1, p = %g, early-stop trainer "
    .. "(batch 100, ≤ %d steps, drop 0.015, stop 0.01). Top row: routing at initialization; bottom row: after "
    .. "training. With k = 1 the renormalized gate is π/π ≡ 1, so the router receives no reconstruction gradient "
    .. "(docs/PAPER.md#router-gradient) and only AdamW's weight decay (which rescales the logits uniformly, leaving the argmax) "
    .. "touches it: the maps are frozen.%s", p, steps,
    old_es and " Old-ES variant: p = 1 and the 'zero' model keeps a Xavier gate (docs/PAPER.md#disagreements)." or ""),
  figures = {
    { heading = "Routing maps", file = "fig5_routing.svg",
      caption = "Each grid point coloured by its top-1 expert; ties (the origin, the diagonal x₀ = x₁ of the diagonal "
        .. "router, everything for the zero router) go to the lowest index." },
  },
  tables = { { caption = "Per model", header = { "init", "final loss", "eval loss (8192)", "steps", "end = start (fraction)",
    "sectors", "experts used", "cone fraction", "diagonal rule fraction" }, rows = rows, decimals = 4 } },
  summary = summary,
}
print(summary.verdict_text)
return summary
