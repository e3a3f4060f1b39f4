------------------------------ MODULE MCAquifer ------------------------------
(***************************************************************************)
(* The scopes TLC checks Aquifer in; the .cfg files pick one and set the  *)
(* rule's flags.  Types a < b < c.  Well 1 serves a (capacity 1) and c    *)
(* (capacity 1) from two pools, or from one shared pool {a, c} of          *)
(* capacity 1 under the SharedPool mutant; well 2 serves b (capacity 2).  *)
(* Factory 1 has one worker slot for target x and one for target y.       *)
(***************************************************************************)
EXTENDS Aquifer

A1 == [type |-> "a", count |-> 1]
B2 == [type |-> "b", count |-> 2]
C1 == [type |-> "c", count |-> 1]

MCTypeOrder == <<"a", "b", "c">>

MCPools ==
    IF SharedPool
    THEN {[well |-> 1, types |-> {"a", "c"}, cap |-> 1],
          [well |-> 2, types |-> {"b"}, cap |-> 2]}
    ELSE {[well |-> 1, types |-> {"a"}, cap |-> 1],
          [well |-> 1, types |-> {"c"}, cap |-> 1],
          [well |-> 2, types |-> {"b"}, cap |-> 2]}

MCFCap == <<[x |-> 1, y |-> 1]>>

(* "pair": DESIGN.md's two jobs, J1 = {a:1, b:2} submitted before         *)
(* J2 = {b:2, c:1}, both for target x (one worker slot between them).     *)
PairNeed   == <<<<A1, B2>>, <<B2, C1>>>>
PairDeps   == <<{}, {}>>
PairTarget == <<"x", "x">>

(* "dep": the same two jobs, now jobs 2 and 3, where job 2 depends on a   *)
(* job 1 that needs only a worker of target y.  Job 3 can start acquiring *)
(* before the older job 2 does: the only way, under FIFO by submission,   *)
(* for a younger job to hold what an older one then waits for when every  *)
(* request is made at once (the parallel mutant).                         *)
DepNeed   == <<<<>>, <<A1, B2>>, <<B2, C1>>>>
DepDeps   == <<{}, {1}, {}>>
DepTarget == <<"y", "x", "x">>
=============================================================================
