local m = toymoe.model{ n_features = 1000, n_hidden = 100 }
local keep = {} for i = 1, 1e6 do keep[i] = m:get("W") end
