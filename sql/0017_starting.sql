-- 0017: a node is 'starting' from its registration until it serves requests
-- (docs/cluster.md "Membership"); load balancers' configurations list only
-- 'active' nodes, so none sends a request to a node that would answer 503.
-- Nodes of the previous version write 'active' at once, as before.

ALTER TABLE cluster_nodes DROP CONSTRAINT cluster_nodes_state_check;
ALTER TABLE cluster_nodes ADD CONSTRAINT cluster_nodes_state_check
    CHECK (state IN ('starting', 'active', 'draining', 'down'));
