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

(* No condition but success, and no inputs: the scopes above.             *)
NoJobsEach == [j \in DOMAIN Need |-> {}]
NoJobs     == {}

(* "runon": job 1 needs a worker of target y; job 2 = {a:1} runs only if  *)
(* job 1 fails, job 3 = {b:2} runs after job 1 however it ends and waits  *)
(* for its inputs, job 4 = {c:1} runs only if job 2 succeeds.  With a    *)
(* fault, job 1 may fail (and job 2 run) or succeed (and job 2, then job  *)
(* 4, fail as dependencies).                                              *)
RunOnNeed      == <<<<>>, <<A1>>, <<B2>>, <<C1>>>>
RunOnDeps      == <<{}, {1}, {1}, {2}>>
RunOnTarget    == <<"y", "x", "x", "y">>
RunOnFailure   == <<{}, {1}, {}, {}>>
RunOnEither    == <<{}, {}, {1}, {}>>
RunOnAwaits    == {3}
=============================================================================
