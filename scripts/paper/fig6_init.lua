-- Fig. 6: the router's initialization steers which features each expert represents monosemantically.
-- Fig. 6 (v2: Fig. 5) of "Sparsity and Superposition in Mixture of Experts" (docs/PAPER.md#fig6): the router's
-- initialization steers which features an expert represents monosemantically. n = 20, m = 5, E = 4, k = 1, no load
-- balancing, sum-over-features loss, batch 1024, AdamW 1e-3. With k = 1 the router is frozen (docs/PAPER.md#router-gradient), so each
-- expert sees exactly the inputs its initial gate sends it.
--   (a) diagonal gate (G[e,e] = 1), importance 0.7^i, p = 0.09 — expert e should dedicate a direction to feature e;
--   (b) ORDERED K-hot (K = 5, expert e ↔ features 5(e−1)+1 … 5e), importance 0.7^i, p = 0.1 — the intended version;
--   (c) random K-hot (K = 5, a random permutation cut into 4 groups), importance 0.7^{perm}, p = 0.1 — each expert's
--       dedicated features should be the top-importance features of its own group.
-- Authors' bug (docs/PAPER.md#fig6, docs/PAPER.md#disagreements): their loop wrote the ordered K-hot pattern into (c)'s gate, so (b) trained with a
-- ZERO gate in the new experiment script (everything routed to one expert). `authors_bug=true` reproduces that
-- new-ES behaviour for (b); the default is the intended ordered K-hot.
--
--   toymoe run scripts/paper/fig6_init.lua [scale=quick|full] [steps=N] [authors_bug=true] [models=abc] --out results/fig6 --jobs 2
--
-- quick: 3 models × 3000 steps (≈ 10 s with --jobs 2); full: 3 models × 10,000 steps (the paper).
-- Authors' final minibatch losses (old ES): (a) 0.0033, (b) 0.0083, (c) 0.0051.
local scale = toymoe.param("scale", "quick")
assert(scale == "quick" or scale == "full", "scale must be 'quick' or 'full', got " .. tostring(scale))
local steps = toymoe.param("steps", scale == "full" and 10000 or 3000)
local authors_bug = toymoe.param("authors_bug", false)
authors_bug = authors_bug == true or authors_bug == "true" or authors_bug == 1
local which = tostring(toymoe.param("models", "abc"))   -- a subset of "abc" (tests train only what they check)
local n, m, E, K = 20, 5, 4, 5
local M = toymoe.metrics

local specs = {
  a = { label = "(a) diagonal gate", gate = "diagonal", p = 0.09, importance = "geometric" },
  b = { label = authors_bug and "(b) ordered K-hot, authors' bug: zero gate" or "(b) ordered K-hot",
        gate = authors_bug and "zero" or "ordered_khot", p = 0.1, importance = "geometric" },
  c = { label = "(c) random K-hot", gate = "random_khot", p = 0.1, importance = "permuted" },
}

local function sorted_by_importance(list, importance)
  local copy = {}
  for i, v in ipairs(list) do copy[i] = v end
  table.sort(copy, function(x, y) return importance[x] > importance[y] end)
  return copy
end

toymoe.sweep{
  name = "fig6",
  cells = (function()
    local list = {}
    for _, key in ipairs({ "a", "b", "c" }) do
      if which:find(key, 1, true) then list[#list + 1] = { model = key } end
    end
    assert(#list > 0, "models must name at least one of a, b, c; got " .. which)
    return list
  end)(),
  run = function(cell)
    local spec = specs[cell.model]
    local importance = spec.importance == "permuted" and toymoe.permuted_geometric(0.7, n) or toymoe.geometric(0.7, n)
    local data = toymoe.data{ feature_probability = spec.p, importance = importance }
    local model = toymoe.model{ n_features = n, n_hidden = m, n_experts = E, n_active_experts = 1,
                                init = { gate = spec.gate } }
    local gate0 = model:get("gate")
    local r = toymoe.train(model, { data = data, steps = steps, batch_size = 1024, loss = "sum" })
    local experts = {}
    for e = 1, E do
      -- The expert's own group, read from the gate before training (for the diagonal: feature e).
      local group = {}
      for i = 1, n do if gate0[e][i] > 0.5 then group[#group + 1] = i end end
      group = sorted_by_importance(group, importance)
      local rank = {}
      for j, i in ipairs(group) do rank[i] = j end
      local g = M.geometry(model, e)
      local in_group, ranks = 0, {}
      for _, i in ipairs(g.dedicated) do
        if rank[i] then in_group = in_group + 1; ranks[#ranks + 1] = rank[i] end
      end
      -- Top-importance rule: the dedicated features inside the group are its top |·| by importance.
      table.sort(ranks)
      local top = #ranks > 0
      for j, v in ipairs(ranks) do if v ~= j then top = false end end
      -- Feature indices 0-based (the paper's, the bars' x axis) in the cell files, summary and report.
      local function zero_based(list) local t = {} for j, i in ipairs(list) do t[j] = i - 1 end return t end
      experts[e] = {
        norms = M.feature_norms(model, e), q = M.polysemanticity(model, e),
        group = zero_based(group), dedicated = zero_based(g.dedicated), represented = zero_based(g.represented),
        features_represented = g.features_represented, antipodal_pairs = #g.antipodal_pairs,
        n_dedicated = #g.dedicated, dedicated_in_group = in_group, dedicated_group_ranks = ranks,
        own_top_feature_dedicated = #group > 0 and rank[group[1]] ~= nil and (function()
          for _, i in ipairs(g.dedicated) do if i == group[1] then return true end end
          return false end)() or false,
        group_top_dedicated = top,
      }
    end
    -- Routing share per expert on training-distribution inputs (shows the zero-gate collapse of the authors' bug).
    local share = {}
    for e = 1, E do share[e] = 0 end
    local batch = data:sample(2048)
    for _, x in ipairs(batch) do
      local s = model:route(x).selected[1]
      share[s] = share[s] + 1 / #batch
    end
    return { final_loss = r.final_loss, importance = importance, gate = gate0, experts = experts, routing_share = share }
  end,
  finish = function(rows)
    local models, figures, table_rows = {}, {}, {}
    for _, row in ipairs(rows) do
      local key, res = row.cell.model, row.replicates[1]
      local spec = specs[key]
      local panels = {}
      local own, with_dedicated, dedicated_total, dedicated_in_group = 0, 0, 0, 0
      for e, ex in ipairs(res.experts) do
        -- Feature indices are 0-based already (see run), like the bars' x axis; experts are numbered from 0 too.
        local grp = #ex.group > 0 and ("gate group {" .. table.concat(ex.group, ",") .. "}") or "no gate group"
        panels[e] = { title = string.format("expert %d", e - 1), values = ex.norms, color_values = ex.q,
                      footnote = grp .. "; dedicated {" .. table.concat(ex.dedicated, ",") .. "}" }
        if ex.own_top_feature_dedicated then own = own + 1 end
        if #ex.dedicated > 0 then with_dedicated = with_dedicated + 1 end
        dedicated_total = dedicated_total + #ex.dedicated
        dedicated_in_group = dedicated_in_group + ex.dedicated_in_group
        table_rows[#table_rows + 1] = { key, e - 1, table.concat(ex.group, ","), table.concat(ex.dedicated, ","),
          ex.dedicated_in_group, ex.features_represented, ex.antipodal_pairs, res.routing_share[e] }
      end
      local file = "fig6" .. key .. "_norms.svg"
      toymoe.plot.bars{ file = file, title = string.format("Fig. 6%s: %s, p = %g, loss %.4f", key, spec.label:sub(5),
        spec.p, res.final_loss), panels = panels, columns = 2, marker = m - 0.5, x_label = "feature i (0-based, as in the paper)",
        y_label = "‖Wᵢ‖", color_label = "Superposition (q / max q)", marker_label = string.format("m − 0.5 (m = %d)", m) }
      figures[#figures + 1] = { heading = spec.label, file = file,
        caption = string.format("final loss %.4f; %d/4 experts dedicate a direction to the top feature of their "
          .. "gate group; %d of %d dedicated features lie in the expert's own group", res.final_loss, own,
          dedicated_in_group, dedicated_total) }
      models[key] = { label = spec.label, gate_init = spec.gate, p = spec.p, final_loss = res.final_loss,
        importance = res.importance, experts = res.experts, routing_share = res.routing_share,
        experts_with_own_top_feature_dedicated = own, experts_with_dedicated = with_dedicated,
        dedicated_total = dedicated_total, dedicated_in_own_group = dedicated_in_group,
        dedicated_in_own_group_fraction = dedicated_total > 0 and dedicated_in_group / dedicated_total or 0 }
      print(string.format("%s: loss %.4f; own-feature dedicated in %d/4 experts; %d/%d dedicated features in own group; routing share %s",
        spec.label, res.final_loss, own, dedicated_in_group, dedicated_total,
        table.concat((function() local t = {} for e, v in ipairs(res.routing_share) do t[e] = string.format("%.2f", v) end return t end)(), "/")))
    end
    -- (c): every expert's dedicated features are among the top-importance features of its own K-hot group.
    local c_top = 0
    for _, ex in ipairs(models.c and models.c.experts or {}) do
      if #ex.dedicated > 0 and ex.dedicated_in_group == #ex.dedicated and ex.group_top_dedicated then c_top = c_top + 1 end
    end
    local summary = {
      figure = "Fig. 6", indices = "0-based (the paper's, numpy's), as in the plots; Lua lists count from 1", scale = scale, steps = steps, authors_bug = authors_bug,
      note_b = authors_bug and "authors' bug reproduced: (b) trained with a ZERO gate (new ES), so one expert gets every input"
        or "intended ordered K-hot gate for (b); the authors' code gave (b) a zero gate (new ES) / Xavier (old ES): authors_bug=true",
      models = models,
      final_loss = { a = models.a and models.a.final_loss, b = models.b and models.b.final_loss,
                     c = models.c and models.c.final_loss },
      a_experts_with_own_feature_dedicated = models.a and models.a.experts_with_own_top_feature_dedicated or 0,
      c_experts_dedicated_top_of_own_group = c_top,
      c_dedicated_in_own_group_fraction = models.c and models.c.dedicated_in_own_group_fraction or 0,
      paper = { final_loss = { a = 0.0033, b = 0.0083, c = 0.0051, note = "old ES, final minibatch" },
                a = "experts 0, 1, 2 dedicate feature e; expert 3's feature 3 has reduced interference",
                c = "dedicated features are the most important of a group the expert was initialized on" },
    }
    summary.reproduced = (not models.a or summary.a_experts_with_own_feature_dedicated >= 3)
      and (not models.c or summary.c_dedicated_in_own_group_fraction >= 0.75)
    local parts = {}
    if models.a then
      parts[#parts + 1] = string.format("(a) diagonal gate: %d of 4 experts dedicate a direction to their own feature "
        .. "(paper 3-4, need >= 3)", summary.a_experts_with_own_feature_dedicated)
    end
    if models.c then
      parts[#parts + 1] = string.format("(c) random K-hot gate: %.0f%% of dedicated features lie in the expert's own "
        .. "group (paper: all, need >= 75%%), %d of 4 experts dedicate their group's top features", 100 * summary.c_dedicated_in_own_group_fraction, c_top)
    end
    summary.verdict_text = string.format("Fig. 6 verdict: %s. Compared: %s%s", summary.reproduced and "reproduced" or "differs",
      #parts > 0 and table.concat(parts, "; ") or "nothing (neither model a nor c was run)",
      (summary.reproduced or steps >= 10000) and ""
        or string.format("; may be the reduced scale (%d steps instead of the paper's 10,000): rerun with scale=full before reading this as a miss", steps))
    toymoe.save_json("summary.json", summary)
    toymoe.plot.report{
      file = "index.html", title = "Fig. 6: router initialization steers monosemantic features",
      introduction = "n = 20, m = 5, E = 4, k = 1, no LB, batch 1024, sum loss, " .. steps .. " steps. Bars: ‖Wᵢ‖ per "
        .. "expert coloured by q (per-expert colour scale); dashed line at m − 0.5. Dedicated: ‖Wᵢ‖ > 0.5 and q < 0.1. "
        .. "Groups are read from the gate before training and listed by decreasing importance. Plots and their footnotes "
        .. "use the paper's 0-based feature and expert indices, like the table and summary.json. "
        .. summary.note_b .. ".",
      figures = figures,
      tables = { { caption = "Per expert", header = { "model", "expert", "gate group (by importance)", "dedicated",
        "dedicated in group", "represented", "antipodal pairs", "routing share" }, rows = table_rows } },
      summary = { final_loss = summary.final_loss, a_experts_with_own_feature_dedicated = summary.a_experts_with_own_feature_dedicated,
                  c_experts_dedicated_top_of_own_group = c_top, c_dedicated_in_own_group_fraction = summary.c_dedicated_in_own_group_fraction,
                  authors_bug = authors_bug, reproduced = summary.reproduced, verdict = summary.verdict_text },
    }
    print(summary.verdict_text)
    return summary
  end,
}
