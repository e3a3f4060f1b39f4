------------------------------- MODULE Aquifer -------------------------------
(***************************************************************************)
(* aquifer's scheduling protocol (DESIGN.md, "The acquisition rule"), at   *)
(* the level of the core's inputs: one action per input the outside world *)
(* can send (or per thing a Tick makes due), with what the core decides in *)
(* that step.  Ids of leases, resources and workers are handed out from    *)
(* counters exactly as core/src/state.rs does, so that recorded traces of  *)
(* the Rust core can be replayed against this spec (AquiferTrace.tla).     *)
(*                                                                         *)
(* Time is abstract: a lease may expire, a worker lease lapse and a job    *)
(* time out at any moment.  Those, cancellation and the wells' and         *)
(* factories' failures are faults, drawn from a finite budget so that they *)
(* cannot happen forever; none of them is fair.                           *)
(*                                                                         *)
(* Three mutants of the rule, each of which DESIGN.md says deadlocks:     *)
(*   Policy = "parallel"  every group and the worker outstanding at once;  *)
(*   SharedPool = TRUE    a pool of one well serves two types;             *)
(*   Grant = "onebyone"   a group of n is granted one instance per lease.  *)
(* (The parallel one deadlocks only when a job can begin acquiring after  *)
(* a younger one, as rule 8 makes it do: with FIFO by submission on every *)
(* queue and every request made at submission, all waits follow age.  See *)
(* MCAquifer.tla and README.md.)                                          *)
(***************************************************************************)
EXTENDS Naturals, FiniteSets, Sequences, TLC

CONSTANTS
    Need,        \* [Jobs -> Seq([type, count])]: a job's groups in rank order
    Deps,        \* [Jobs -> SUBSET Jobs]: the jobs it depends on (rule 8)
    OnFailure,   \* [Jobs -> SUBSET Jobs]: of those, the ones it runs only if they fail
    OnEither,    \* [Jobs -> SUBSET Jobs]: and the ones it runs after however they end
    Awaits,      \* SUBSET Jobs: jobs whose submitter uploads inputs after submitting
    Target,      \* [Jobs -> target name]
    TypeOrder,   \* the resource types in rank order (lexicographic in Rust)
    Pools,       \* set of [well |-> id, types |-> set of types, cap |-> n]
    FCap,        \* [Factories -> [target -> worker slots]]
    Policy,      \* "ordered" (production) | "parallel" (mutant)
    Grant,       \* "together" (production) | "onebyone" (mutant)
    SharedPool,  \* FALSE (production): TRUE lets a pool serve several types
    GroupFailuresMax,   \* failed or expired leases of a group before its job fails
    DestroyFailuresMax, \* destroy failures in a row before a resource is held
    Faults       \* how many faults (see above) one behaviour may contain

Jobs      == DOMAIN Need          \* numbered in submission order: 1, 2, ...
Factories == DOMAIN FCap
Wells     == {p.well : p \in Pools}
Types     == {TypeOrder[k] : k \in 1..Len(TypeOrder)}
Rank(t)   == CHOOSE k \in 1..Len(TypeOrder) : TypeOrder[k] = t
Groups(j) == 1..Len(Need[j])

ASSUME /\ Policy \in {"ordered", "parallel"}
       /\ Grant \in {"together", "onebyone"}
       /\ SharedPool \in BOOLEAN
       /\ Jobs = 1..Cardinality(Jobs)
       /\ \A j \in Jobs : Deps[j] \subseteq 1..(j - 1)
       /\ \A j \in Jobs : OnFailure[j] \cup OnEither[j] \subseteq Deps[j]
                        /\ OnFailure[j] \cap OnEither[j] = {}
       /\ Awaits \subseteq Jobs
       \* groups are by type, in strictly increasing rank (rule 1)
       /\ \A j \in Jobs : \A g \in Groups(j) :
            /\ Need[j][g].type \in Types /\ Need[j][g].count >= 1
            /\ g > 1 => Rank(Need[j][g - 1].type) < Rank(Need[j][g].type)
       \* rule 7: a well serves a type from one pool, a pool belongs to one
       \* type (except under the SharedPool mutant)
       /\ \A p, q \in Pools : p # q /\ p.well = q.well => p.types \cap q.types = {}
       /\ ~SharedPool => \A p \in Pools : Cardinality(p.types) = 1
       /\ \A f \in Factories : \A tg \in DOMAIN FCap[f] : FCap[f][tg] >= 1

-----------------------------------------------------------------------------
VARIABLES
    st,         \* the protocol state, a record (fields below)
    budget,     \* faults left in this behaviour
    goneRes,    \* ghost: resource ids whose destruction a well confirmed
    goneWorkers \* ghost: worker ids whose destruction a factory confirmed

(* The protocol state is one record, so that an action computes the next *)
(* one with the pure operators below and commits it in one assignment    *)
(* (TLC evaluates that once, also when it checks fairness), and so that  *)
(* trace validation can compare it with the state folded from the core's *)
(* events.  Its fields:                                                   *)
phase      == st.phase      \* [Jobs -> {"new","blocked","acquiring","running","ended","retired"}]
outcome    == st.outcome    \* [Jobs -> "none" | "succeeded" | "cancelled" | "timed_out" | "failed_..."]
grp        == st.grp        \* grp[j][g] \in {"idle", "acquiring", "ready"}
gfail      == st.gfail      \* gfail[j][g]: failed or expired leases of that group
wwant      == st.wwant      \* wwant[j] \in {"idle", "queued", "bound"}: the job's worker
leases     == st.leases     \* lease id -> [job, grp, well, res (set of resource ids)]
res        == st.res        \* resource id -> [job, grp, type, well, st, lease, fails],
                            \*   st \in {"creating", "ready", "releasing", "held"}
workers    == st.workers    \* worker id -> [job, fac, st],
                            \*   st \in {"leased", "created", "online", "releasing"}
nextLease  == st.nextLease  \* id counters, as in the core
nextRes    == st.nextRes
nextWorker == st.nextWorker
hold       == st.hold       \* an admin has stopped all granting (HoldLeases)
inputs     == st.inputs     \* [Jobs -> BOOLEAN]: its inputs are whole (or it has none)

vars == <<st, budget, goneRes, goneWorkers>>
Cur == st
Commit(s) == st' = s

NoFn == [x \in {} |-> 0]
Drop(f, S) == [x \in DOMAIN f \ S |-> f[x]]
Min(a, b) == IF a < b THEN a ELSE b
Oldest(S) == CHOOSE j \in S : \A k \in S : j <= k

-----------------------------------------------------------------------------
(* Reading a state record s.                                               *)

Ended(s, j)    == s.phase[j] \in {"ended", "retired"}
(* Rule 8: whether job k runs after its dependency d ended with o: on     *)
(* success, unless k asked for d's failure (any other end) or for either. *)
Met(k, d, o)   == IF d \in OnFailure[k] THEN o # "succeeded"
                  ELSE IF d \in OnEither[k] THEN TRUE
                  ELSE o = "succeeded"
(* Nothing holds job k back any more: every dependency ended as k asked, *)
(* and its inputs are whole.                                             *)
Clear(s, k)    == /\ \A d \in Deps[k] : Ended(s, d) /\ Met(k, d, s.outcome[d])
                  /\ s.inputs[k]
LiveJob(s, j)  == s.phase[j] \in {"blocked", "acquiring", "running"}
IsLive(s, r)   == s.res[r].st \in {"creating", "ready"}
ResOf(s, j)    == {r \in DOMAIN s.res : s.res[r].job = j}
LiveIn(s, j, g)  == Cardinality({r \in ResOf(s, j) : s.res[r].grp = g /\ IsLive(s, r)})
ReadyIn(s, j, g) == Cardinality({r \in ResOf(s, j) : s.res[r].grp = g /\ s.res[r].st = "ready"})

(* How many instances group g of job j asks for in one lease now: the     *)
(* whole group when none of it is live (production), or one instance at a *)
(* time under the one-by-one mutant.  0 when it is not waiting.           *)
Needed(s, j, g) ==
    IF s.phase[j] = "acquiring" /\ s.grp[j][g] = "acquiring"
    THEN LET c == Need[j][g].count
             m == c - LiveIn(s, j, g)
         IN  IF Grant = "together" THEN (IF m = c THEN c ELSE 0)
                                   ELSE (IF m > 0 THEN 1 ELSE 0)
    ELSE 0

HasType(j, t) == \E g \in Groups(j) : Need[j][g].type = t
GroupOf(j, t) == CHOOSE g \in Groups(j) : Need[j][g].type = t
(* The queue of type t: jobs with a group of t waiting for a lease.  Its  *)
(* order is the job id (rule 5); a retried group keeps its place because  *)
(* its job keeps its id.                                                  *)
Queue(s, t) == {j \in Jobs : HasType(j, t) /\ Needed(s, j, GroupOf(j, t)) > 0}

Serves(w, t)    == \E p \in Pools : p.well = w /\ t \in p.types
PoolOf(w, t)    == CHOOSE p \in Pools : p.well = w /\ t \in p.types
(* Capacity comes back only when a destruction is confirmed: a resource  *)
(* counts against its pool for as long as it is in the books, whatever    *)
(* its state (creating, ready, releasing or held).                        *)
PoolUsed(s, p)  == Cardinality({r \in DOMAIN s.res : s.res[r].well = p.well
                                                    /\ s.res[r].type \in p.types})
PoolRoom(s, w, t) == PoolOf(w, t).cap - PoolUsed(s, PoolOf(w, t))

FUsed(s, f, tg) == Cardinality({k \in DOMAIN s.workers : s.workers[k].fac = f
                                                     /\ Target[s.workers[k].job] = tg})
WQueue(s, tg)   == {j \in Jobs : s.phase[j] = "acquiring" /\ s.wwant[j] = "queued"
                                 /\ Target[j] = tg}

-----------------------------------------------------------------------------
(* Pure transformations of a state record.                                 *)

StartGroups(j) == [g \in Groups(j) |-> IF Policy = "parallel" \/ g = 1
                                       THEN "acquiring" ELSE "idle"]

(* The jobs in U begin acquiring: the first group, or the worker when     *)
(* there is no group (ordered); everything at once (parallel).            *)
BeginAcq(s, U) ==
    [s EXCEPT
        !.phase = [k \in Jobs |-> IF k \in U THEN "acquiring" ELSE s.phase[k]],
        !.grp   = [k \in Jobs |-> IF k \in U THEN StartGroups(k) ELSE s.grp[k]],
        !.wwant = [k \in Jobs |-> IF k \in U /\ (Policy = "parallel" \/ Need[k] = <<>>)
                                  THEN "queued" ELSE s.wwant[k]]]

(* Rules 2 and 3: ask for the first group not yet ready, or for the       *)
(* worker once every group is ready.                                      *)
AskNext(s, j) ==
    IF \E g \in Groups(j) : s.grp[j][g] # "ready"
    THEN LET g == CHOOSE g \in Groups(j) : s.grp[j][g] # "ready"
                                         /\ \A h \in 1..(g - 1) : s.grp[j][h] = "ready"
         IN  IF s.grp[j][g] = "idle" THEN [s EXCEPT !.grp[j][g] = "acquiring"] ELSE s
    ELSE IF s.wwant[j] = "idle" THEN [s EXCEPT !.wwant[j] = "queued"] ELSE s

(* A job leaves the books once it has ended and everything it held is    *)
(* confirmed gone.                                                        *)
Retire(s, j) ==
    IF /\ s.phase[j] = "ended"
       /\ \A l \in DOMAIN s.leases : s.leases[l].job # j
       /\ ResOf(s, j) = {}
       /\ \A k \in DOMAIN s.workers : s.workers[k].job # j
    THEN [s EXCEPT !.phase[j] = "retired"]
    ELSE s

Releasing(rec) == [rec EXCEPT !.st = "releasing", !.lease = 0, !.fails = 0]

(* Rule 8, when job j has just ended with outcome o: each blocked job    *)
(* that waits for it and asked for another ending fails, and is settled  *)
(* in turn (its own dependents may have asked for its failure); each    *)
(* that it satisfied begins once nothing else holds it back.  A blocked  *)
(* job holds nothing, so one that fails retires at once.                 *)
RECURSIVE Settle(_, _, _), SettleEach(_, _)
Settle(s, j, o) ==
    LET Waiting == {k \in Jobs : s.phase[k] = "blocked" /\ j \in Deps[k]}
        Failing == {k \in Waiting : ~Met(k, j, o)}
        s1 == [s EXCEPT
                 !.phase   = [k \in Jobs |-> IF k \in Failing THEN "retired" ELSE s.phase[k]],
                 !.outcome = [k \in Jobs |-> IF k \in Failing THEN "failed_dependency"
                                                             ELSE s.outcome[k]]]
    IN  SettleEach(BeginAcq(s1, {k \in Waiting \ Failing : Clear(s1, k)}), Failing)
SettleEach(s, F) ==
    IF F = {} THEN s
    ELSE LET k == CHOOSE k \in F : TRUE
         IN  SettleEach(Settle(s, k, "failed_dependency"), F \ {k})

(* Rule 6: a job that ends, however it ends, releases everything: its    *)
(* leases end (what they cover goes to release), its ready resources go   *)
(* to release, its worker goes back to its factory.                       *)
EndJob(s, j, o) ==
    LET s1 == [s EXCEPT
                 !.phase[j] = "ended", !.outcome[j] = o,
                 !.leases = Drop(s.leases, {l \in DOMAIN s.leases : s.leases[l].job = j}),
                 !.res = [r \in DOMAIN s.res |->
                            IF s.res[r].job = j /\ IsLive(s, r)
                            THEN Releasing(s.res[r]) ELSE s.res[r]],
                 !.workers = [k \in DOMAIN s.workers |->
                            IF s.workers[k].job = j
                            THEN [s.workers[k] EXCEPT !.st = "releasing"]
                            ELSE s.workers[k]]]
    IN  Settle(Retire(s1, j), j, o)

(* A lease ends before it is fulfilled: what it covers goes to release.   *)
EndLease(s, l) ==
    [s EXCEPT !.leases = Drop(s.leases, {l}),
              !.res = [r \in DOMAIN s.res |->
                         IF r \in s.leases[l].res /\ IsLive(s, r)
                         THEN Releasing(s.res[r]) ELSE s.res[r]]]

(* A lease failed or expired: the group keeps its place in its queue,     *)
(* unless the failure may not be retried or the group failed too often,   *)
(* in which case the job fails.                                           *)
FailLease(s, l, retryable) ==
    LET j  == s.leases[l].job
        g  == s.leases[l].grp
        s1 == [EndLease(s, l) EXCEPT !.gfail[j][g] = @ + 1]
    IN  IF ~retryable \/ s1.gfail[j][g] >= GroupFailuresMax
        THEN EndJob(s1, j, "failed_resource")
        ELSE s1

-----------------------------------------------------------------------------
(* Actions.  Each is one input to the core (or one thing a Tick makes     *)
(* due), with the whole of what the core does about it.                   *)

Ghosts == <<budget, goneRes, goneWorkers>>
Do(s) == Commit(s) /\ UNCHANGED Ghosts
Fault(s) == budget > 0 /\ Commit(s) /\ budget' = budget - 1
            /\ UNCHANGED <<goneRes, goneWorkers>>

(* A user submits job j (ids are handed out in submission order).         *)
Submit(j) ==
    /\ phase[j] = "new"
    /\ \A k \in Jobs : k < j => phase[k] # "new"
    /\ LET s1 == [Cur EXCEPT !.phase[j] = "blocked"]
       IN  Do(IF \E d \in Deps[j] : Ended(Cur, d) /\ ~Met(j, d, outcome[d])
              THEN [s1 EXCEPT !.phase[j] = "retired", !.outcome[j] = "failed_dependency"]
              ELSE IF Clear(s1, j)
                   THEN BeginAcq(s1, {j})
                   ELSE s1)

(* Job j's submitter has uploaded every input it named: the job begins   *)
(* once its dependencies allow.                                          *)
InputsArrive(j) ==
    /\ phase[j] = "blocked" /\ ~inputs[j]
    /\ LET s1 == [Cur EXCEPT !.inputs[j] = TRUE]
       IN  Do(IF Clear(s1, j) THEN BeginAcq(s1, {j}) ELSE s1)

(* Well w asks for work with free[t] slots per type t (a function whose   *)
(* domain is some of the types it serves).  It gets, for one of those     *)
(* types, the OLDEST waiting group, if that fits both what the well says  *)
(* it has free and what the books say its pool has room for (rule 4, 5);  *)
(* a later group of that type never takes its place.                     *)
FitsAt(s, w, free, t) ==
    /\ t \in DOMAIN free /\ Serves(w, t)
    /\ Queue(s, t) # {}
    /\ LET j == Oldest(Queue(s, t))
       IN  Needed(s, j, GroupOf(j, t)) <= Min(free[t], PoolRoom(s, w, t))

GrantTo(s, w, t) ==
    LET j   == Oldest(Queue(s, t))
        g   == GroupOf(j, t)
        n   == Needed(s, j, g)
        ids == s.nextRes..(s.nextRes + n - 1)
    IN  [s EXCEPT
           !.leases = s.leases @@ (s.nextLease :> [job |-> j, grp |-> g, well |-> w, res |-> ids]),
           !.res = s.res @@ [r \in ids |-> [job |-> j, grp |-> g, type |-> t, well |-> w,
                                           st |-> "creating", lease |-> s.nextLease,
                                           fails |-> 0]],
           !.nextLease = @ + 1, !.nextRes = @ + n]

RequestLease(w, free) ==
    /\ ~hold
    /\ \E t \in DOMAIN free : FitsAt(Cur, w, free, t) /\ Do(GrantTo(Cur, w, t))

(* The well's request finds nothing (trace validation uses this).         *)
NoLease(w, free) == w \in Wells /\ (hold \/ \A t \in DOMAIN free : ~FitsAt(Cur, w, free, t))

(* What a well reports free: its room by the books.                       *)
Room(w) == [t \in {t \in Types : Serves(w, t)} |-> PoolRoom(Cur, w, t)]

(* The well reports resource r ready.  When the whole lease is ready it   *)
(* leaves the books; when the whole group is, the job asks for the next.  *)
ReadyS(s, r) ==
    LET l  == s.res[r].lease
        j  == s.res[r].job
        g  == s.res[r].grp
        s1 == [s EXCEPT !.res[r].st = "ready", !.res[r].lease = 0]
        s2 == IF \A x \in s1.leases[l].res : s1.res[x].st = "ready"
              THEN [s1 EXCEPT !.leases = Drop(s1.leases, {l})] ELSE s1
    IN  IF ReadyIn(s2, j, g) = Need[j][g].count
        THEN AskNext([s2 EXCEPT !.grp[j][g] = "ready"], j)
        ELSE s2

Ready(r) == r \in DOMAIN res /\ res[r].st = "creating" /\ Do(ReadyS(Cur, r))

(* Faults of the wells.                                                   *)
CreateFailed(r, retryable) ==
    /\ r \in DOMAIN res /\ res[r].st = "creating"
    /\ Fault(FailLease(Cur, res[r].lease, retryable))

(* The well died mid-create: the lease expires unreported.                *)
Expire(l) == l \in DOMAIN leases /\ Fault(FailLease(Cur, l, TRUE))

(* The well confirms r destroyed: the only way anything leaves the books. *)
Destroyed(r) ==
    /\ r \in DOMAIN res /\ res[r].st \in {"releasing", "held"}
    /\ Commit(Retire([Cur EXCEPT !.res = Drop(res, {r})], res[r].job))
    /\ goneRes' = goneRes \cup {r}
    /\ UNCHANGED <<budget, goneWorkers>>

DestroyFailed(r) ==
    /\ r \in DOMAIN res /\ res[r].st = "releasing"
    /\ Fault([Cur EXCEPT !.res[r].fails = @ + 1,
                         !.res[r].st = IF res[r].fails + 1 >= DestroyFailuresMax
                                       THEN "held" ELSE "releasing"])

(* An operator has dealt with a held resource: its well tries again.     *)
ReleaseHeld(r) ==
    /\ r \in DOMAIN res /\ res[r].st = "held"
    /\ Do([Cur EXCEPT !.res[r].st = "releasing", !.res[r].fails = 0])

(* Factory f asks for work with free[tg] slots per target: it gets the    *)
(* oldest job waiting for a worker of one of those targets, if the books  *)
(* leave room for one more worker of that target.  Under the ordered      *)
(* policy a job waits for a worker only when it holds every group.       *)
WFitsAt(s, f, free, tg) ==
    /\ f \in Factories /\ tg \in DOMAIN free /\ tg \in DOMAIN FCap[f] /\ free[tg] > 0
    /\ FUsed(s, f, tg) < FCap[f][tg]
    /\ WQueue(s, tg) # {}

RequestWorker(f, free) ==
    /\ ~hold
    /\ \E tg \in DOMAIN free :
         /\ WFitsAt(Cur, f, free, tg)
         /\ LET j == Oldest(WQueue(Cur, tg))
            IN  Do([Cur EXCEPT
                      !.workers = workers @@ (nextWorker :> [job |-> j, fac |-> f, st |-> "leased"]),
                      !.wwant[j] = "bound", !.nextWorker = @ + 1])

NoWorker(f, free) == f \in Factories /\ (hold \/ \A tg \in DOMAIN free : ~WFitsAt(Cur, f, free, tg))

FRoom(f) == [tg \in DOMAIN FCap[f] |-> FCap[f][tg] - FUsed(Cur, f, tg)]

WorkerCreated(k) ==
    k \in DOMAIN workers /\ workers[k].st = "leased"
    /\ Do([Cur EXCEPT !.workers[k].st = "created"])

WorkerOnline(k) ==
    k \in DOMAIN workers /\ workers[k].st = "created"
    /\ Do([Cur EXCEPT !.workers[k].st = "online"])

(* The agent starts the job: only with every group ready and its worker   *)
(* online.                                                                *)
Start(j) ==
    /\ phase[j] = "acquiring"
    /\ \A g \in Groups(j) : grp[j][g] = "ready"
    /\ \E k \in DOMAIN workers : workers[k].job = j /\ workers[k].st = "online"
    /\ Do([Cur EXCEPT !.phase[j] = "running"])

Finish(j, ok) ==
    phase[j] = "running" /\ Do(EndJob(Cur, j, IF ok THEN "succeeded" ELSE "failed_tasks"))

(* Faults of the factories: a worker lease lapses (the job waits for a   *)
(* worker again at its old place), or a worker is lost (the job fails).  *)
WorkerLeaseExpired(k) ==
    /\ k \in DOMAIN workers /\ workers[k].st = "leased"
    /\ Fault([Cur EXCEPT !.workers[k].st = "releasing", !.wwant[workers[k].job] = "queued"])

WorkerLost(k) ==
    /\ k \in DOMAIN workers /\ workers[k].st # "releasing"
    /\ Fault(EndJob(Cur, workers[k].job, "failed_worker_lost"))

WorkerDestroyed(k) ==
    /\ k \in DOMAIN workers /\ workers[k].st = "releasing"
    /\ Commit(Retire([Cur EXCEPT !.workers = Drop(workers, {k})], workers[k].job))
    /\ goneWorkers' = goneWorkers \cup {k}
    /\ UNCHANGED <<budget, goneRes>>

(* Faults of the users and of time.                                       *)
Cancel(j)  == LiveJob(Cur, j) /\ Fault(EndJob(Cur, j, "cancelled"))
Timeout(j) == LiveJob(Cur, j) /\ Fault(EndJob(Cur, j, "timed_out"))

(* Admin: stop or resume granting (only used by trace validation).        *)
SetHold(b) == hold # b /\ Do([Cur EXCEPT !.hold = b])

(* From here on the environment injects no more faults.  Because any      *)
(* state can be followed by this step, the twin of every reachable state  *)
(* with no faults left is reachable too, and TLC's deadlock check applies *)
(* to it: a state where only a fault could make progress is a deadlock.  *)
Calm == budget > 0 /\ budget' = 0 /\ UNCHANGED <<st, goneRes, goneWorkers>>

(* The end: every job has ended, everything is destroyed or held.         *)
Terminal ==
    /\ \A j \in Jobs : Ended(Cur, j)
    /\ DOMAIN leases = {} /\ DOMAIN workers = {}
    /\ \A r \in DOMAIN res : res[r].st = "held"

Done == Terminal /\ UNCHANGED vars

-----------------------------------------------------------------------------
Init ==
    /\ st = [phase      |-> [j \in Jobs |-> "new"],
             outcome    |-> [j \in Jobs |-> "none"],
             grp        |-> [j \in Jobs |-> [g \in Groups(j) |-> "idle"]],
             gfail      |-> [j \in Jobs |-> [g \in Groups(j) |-> 0]],
             wwant      |-> [j \in Jobs |-> "idle"],
             leases     |-> NoFn, res |-> NoFn, workers |-> NoFn,
             nextLease  |-> 1, nextRes |-> 1, nextWorker |-> 1,
             hold       |-> FALSE,
             inputs     |-> [j \in Jobs |-> j \notin Awaits]]
    /\ budget = Faults
    /\ goneRes = {} /\ goneWorkers = {}

(* Every step the core can take (without Calm and Done).                  *)
ProtocolNext ==
    \/ \E j \in Jobs : Submit(j) \/ InputsArrive(j) \/ Start(j) \/ Finish(j, TRUE)
                       \/ Finish(j, FALSE) \/ Cancel(j) \/ Timeout(j)
    \/ \E w \in Wells : RequestLease(w, Room(w))
    \/ \E r \in DOMAIN res : \/ Ready(r) \/ CreateFailed(r, TRUE) \/ CreateFailed(r, FALSE)
                             \/ Destroyed(r) \/ DestroyFailed(r) \/ ReleaseHeld(r)
    \/ \E l \in DOMAIN leases : Expire(l)
    \/ \E f \in Factories : RequestWorker(f, FRoom(f))
    \/ \E k \in DOMAIN workers : \/ WorkerCreated(k) \/ WorkerOnline(k)
                                 \/ WorkerLeaseExpired(k) \/ WorkerLost(k)
                                 \/ WorkerDestroyed(k)

Next == ProtocolNext \/ Calm \/ Done

(***************************************************************************)
(* Fairness.  Only the parties that are supposed to act act eventually;   *)
(* every fault, the admin's hold and the users' cancellations are unfair. *)
(*  1. Users submit the jobs of the scope, and upload the inputs they    *)
(*     said they would.                                                   *)
(*  2. A well with free capacity keeps asking for work: its lease request *)
(*     made with what the books say it has free (WellLeasing).           *)
(*  3. A well eventually reports what it is creating (ready), and         *)
(*  4. eventually destroys what it was asked to destroy; failing instead  *)
(*     is a fault.                                                        *)
(*  5. An operator eventually deals with a held resource (ReleaseHeld):  *)
(*     without it a held resource keeps its slot for ever, and a job that *)
(*     needs the whole pool could only time out.                          *)
(*  6. A factory keeps asking for work, and                               *)
(*  7. eventually creates the workers it leased and destroys those it was *)
(*     asked to; an agent eventually checks in;                           *)
(*  8. an agent eventually starts its job, and a running job eventually   *)
(*     finishes; timing out is a fault.                                   *)
(* Every one is weak fairness (WF) on the disjunction of one party's      *)
(* actions of one kind.  WF suffices: once enabled, each stays enabled    *)
(* until it is taken or a fault disables it (a grant of a well's pool is  *)
(* taken only by that well, and FIFO lets no later group overtake the     *)
(* head of a queue).  WF on a disjunction over all wells (resources,      *)
(* workers, jobs) is as strong as WF on each here: each fair action moves *)
(* a bounded measure forward, only faults (finitely many) move it back,  *)
(* so an action enabled for ever cannot be passed over for ever.          *)
(* Faults come from a finite budget: they cannot happen forever.          *)
(*                                                                        *)
(* WF_vars(A) is []<>~ENABLED <<A>>_vars \/ []<><<A>>_vars.  TLC          *)
(* evaluates those by recomputing A's successors in every state and on    *)
(* every transition, once per liveness branch, which made checking 40     *)
(* times slower than safety.  So each is written below in that form with *)
(* ENABLED <<A>>_vars replaced by a cheap state predicate (Can_) and      *)
(* <<A>>_vars by a cheap action (Did_) that reads the change A makes.     *)
(* FairnessExact (an invariant) and FairnessSteps (an action property)    *)
(* check, in every reachable state and on every step, that they are      *)
(* exactly ENABLED <<A>>_vars and <<A>>_vars; so Fairness below is         *)
(* exactly the conjunction of the WF conditions.                           *)
(***************************************************************************)
Submits == \E j \in Jobs : Submit(j) \/ InputsArrive(j)
WellLeases == \E w \in Wells : RequestLease(w, Room(w))
WellReports == \E r \in DOMAIN res : Ready(r)
WellDestroys == \E r \in DOMAIN res : res[r].st = "releasing" /\ Destroyed(r)
AdminReleases == \E r \in DOMAIN res : ReleaseHeld(r)
FactoryLeases == \E f \in Factories : RequestWorker(f, FRoom(f))
FactoryWork == \E k \in DOMAIN workers : WorkerCreated(k) \/ WorkerOnline(k) \/ WorkerDestroyed(k)
AgentWork == \E j \in Jobs : Start(j) \/ Finish(j, TRUE) \/ Finish(j, FALSE)

ResIn(S)    == {r \in DOMAIN res : res[r].st \in S}
WorkersIn(S) == {k \in DOMAIN workers : workers[k].st \in S}
Now(r)      == IF r \in DOMAIN st'.res THEN st'.res[r].st ELSE "gone"
NowW(k)     == IF k \in DOMAIN st'.workers THEN st'.workers[k].st ELSE "gone"

Can1 == \E j \in Jobs : phase[j] = "new" \/ (phase[j] = "blocked" /\ ~inputs[j])
Did1 == \E j \in Jobs : \/ phase[j] = "new" /\ st'.phase[j] # "new"
                        \/ ~inputs[j] /\ st'.inputs[j]
Can2 == ~hold /\ \E w \in Wells : \E t \in Types : FitsAt(Cur, w, Room(w), t)
Did2 == st'.nextLease # nextLease
Can3 == ResIn({"creating"}) # {}
Did3 == \E r \in ResIn({"creating"}) : Now(r) = "ready"
Can4 == ResIn({"releasing"}) # {}
Did4 == \E r \in ResIn({"releasing"}) : Now(r) = "gone"
Can5 == ResIn({"held"}) # {}
Did5 == \E r \in ResIn({"held"}) : Now(r) = "releasing"
Can6 == ~hold /\ \E f \in Factories : \E tg \in DOMAIN FCap[f] : WFitsAt(Cur, f, FRoom(f), tg)
Did6 == st'.nextWorker # nextWorker
Can7 == WorkersIn({"leased", "created", "releasing"}) # {}
Did7 == \E k \in WorkersIn({"leased", "created", "releasing"}) :
            NowW(k) = CASE workers[k].st = "leased"  -> "created"
                        [] workers[k].st = "created" -> "online"
                        [] OTHER                    -> "gone"
Can8 == \E j \in Jobs : \/ phase[j] = "running"
                        \/ /\ phase[j] = "acquiring" /\ \A g \in Groups(j) : grp[j][g] = "ready"
                           /\ \E k \in WorkersIn({"online"}) : workers[k].job = j
Did8 == \E j \in Jobs : \/ phase[j] = "acquiring" /\ st'.phase[j] = "running"
                        \/ phase[j] = "running" /\ st'.outcome[j] \in {"succeeded", "failed_tasks"}

WellLeasing == []<>~Can2 \/ []<><<Did2>>_vars
OtherFairness ==
    /\ []<>~Can1 \/ []<><<Did1>>_vars
    /\ []<>~Can3 \/ []<><<Did3>>_vars
    /\ []<>~Can4 \/ []<><<Did4>>_vars
    /\ []<>~Can5 \/ []<><<Did5>>_vars
    /\ []<>~Can6 \/ []<><<Did6>>_vars
    /\ []<>~Can7 \/ []<><<Did7>>_vars
    /\ []<>~Can8 \/ []<><<Did8>>_vars

Spec == Init /\ [][Next]_vars /\ WellLeasing /\ OtherFairness

(* Mutant: wells are not obliged to ask for work.                         *)
SpecNoWellFairness == Init /\ [][Next]_vars /\ OtherFairness

(* The cheap forms are exact (see above).                                 *)
FairnessExact ==
    /\ Can1 = ENABLED <<Submits>>_vars /\ Can2 = ENABLED <<WellLeases>>_vars
    /\ Can3 = ENABLED <<WellReports>>_vars /\ Can4 = ENABLED <<WellDestroys>>_vars
    /\ Can5 = ENABLED <<AdminReleases>>_vars /\ Can6 = ENABLED <<FactoryLeases>>_vars
    /\ Can7 = ENABLED <<FactoryWork>>_vars /\ Can8 = ENABLED <<AgentWork>>_vars
FairnessSteps ==
    [][/\ Did1 = Submits /\ Did2 = WellLeases /\ Did3 = WellReports /\ Did4 = WellDestroys
       /\ Did5 = AdminReleases /\ Did6 = FactoryLeases /\ Did7 = FactoryWork /\ Did8 = AgentWork]_vars

-----------------------------------------------------------------------------
(* Bounds on the ids a behaviour can hand out (each new lease of a group  *)
(* after its first follows a fault).                                      *)
RECURSIVE SumOf(_)
SumOf(S) == IF S = {} THEN 0
            ELSE LET e == CHOOSE e \in S : TRUE IN e.n + SumOf(S \ {e})
TotalCount == SumOf(UNION {{[j |-> j, g |-> g, n |-> Need[j][g].count] : g \in Groups(j)} : j \in Jobs})
Counts     == UNION {{Need[j][g].count : g \in Groups(j)} : j \in Jobs}
MaxCount   == IF Counts = {} THEN 0 ELSE CHOOSE m \in Counts : \A c \in Counts : c <= m
MaxRes     == TotalCount + Faults * MaxCount
MaxLease   == TotalCount + Faults
MaxWorker  == Cardinality(Jobs) + Faults

-----------------------------------------------------------------------------
(* Invariants.                                                             *)

Phases   == {"new", "blocked", "acquiring", "running", "ended", "retired"}
Outcomes == {"none", "succeeded", "cancelled", "timed_out", "failed_tasks",
             "failed_resource", "failed_worker_lost", "failed_dependency"}

TypeOK ==
    /\ phase \in [Jobs -> Phases]
    /\ outcome \in [Jobs -> Outcomes]
    /\ \A j \in Jobs : /\ grp[j] \in [Groups(j) -> {"idle", "acquiring", "ready"}]
                       /\ gfail[j] \in [Groups(j) -> 0..GroupFailuresMax]
    /\ wwant \in [Jobs -> {"idle", "queued", "bound"}]
    /\ DOMAIN leases \subseteq 1..(nextLease - 1)
    /\ \A l \in DOMAIN leases :
         /\ leases[l].job \in Jobs /\ leases[l].grp \in Groups(leases[l].job)
         /\ leases[l].well \in Wells /\ leases[l].res \subseteq DOMAIN res
    /\ DOMAIN res \subseteq 1..(nextRes - 1)
    /\ \A r \in DOMAIN res :
         /\ res[r].job \in Jobs /\ res[r].grp \in Groups(res[r].job)
         /\ res[r].type = Need[res[r].job][res[r].grp].type
         /\ Serves(res[r].well, res[r].type)
         /\ res[r].st \in {"creating", "ready", "releasing", "held"}
         /\ (res[r].st = "creating") = (res[r].lease \in DOMAIN leases)
         /\ res[r].fails \in 0..DestroyFailuresMax
    /\ DOMAIN workers \subseteq 1..(nextWorker - 1)
    /\ \A k \in DOMAIN workers :
         /\ workers[k].job \in Jobs /\ workers[k].fac \in Factories
         /\ workers[k].st \in {"leased", "created", "online", "releasing"}
    /\ nextLease \in 1..(MaxLease + 1)
    /\ nextRes \in 1..(MaxRes + 1)
    /\ nextWorker \in 1..(MaxWorker + 1)
    /\ hold \in BOOLEAN
    /\ inputs \in [Jobs -> BOOLEAN]
    /\ budget \in 0..Faults

(* No pool and no factory ever has more in the books than its capacity.   *)
PoolsWithinCapacity ==
    /\ \A p \in Pools : PoolUsed(Cur, p) <= p.cap
    /\ \A f \in Factories : \A tg \in DOMAIN FCap[f] : FUsed(Cur, f, tg) <= FCap[f][tg]

(* A running job holds all its groups, whole and ready, and its worker.   *)
RunningHoldsEverything ==
    \A j \in Jobs : phase[j] = "running" =>
        /\ \A g \in Groups(j) : grp[j][g] = "ready" /\ ReadyIn(Cur, j, g) = Need[j][g].count
        /\ \E k \in DOMAIN workers : workers[k].job = j /\ workers[k].st = "online"

(* The heart: a job never waits for a type ranked at or below one it     *)
(* holds, and never waits for a resource while holding a worker.  Under  *)
(* the ordered, together rule this is why the wait-for graph is acyclic. *)
WaitsFor(j)    == {Need[j][g].type : g \in {g \in Groups(j) : Needed(Cur, j, g) > 0}}
Holds(j)       == {res[r].type : r \in {r \in ResOf(Cur, j) : IsLive(Cur, r)}}
HoldsWorker(j) == \E k \in DOMAIN workers : workers[k].job = j /\ workers[k].st # "releasing"

RankOrder ==
    \A j \in Jobs : LiveJob(Cur, j) =>
        /\ \A t \in WaitsFor(j) : \A h \in Holds(j) : Rank(h) < Rank(t)
        /\ HoldsWorker(j) => WaitsFor(j) = {}

(* An instance leaves the books only through a destroy confirmation: the *)
(* confirm actions alone add to the ghost sets, and every id ever handed *)
(* out is either still in the books or confirmed gone, never both.       *)
NothingLeavesUnconfirmed ==
    /\ \A r \in 1..(nextRes - 1) : (r \in DOMAIN res) # (r \in goneRes)
    /\ \A k \in 1..(nextWorker - 1) : (k \in DOMAIN workers) # (k \in goneWorkers)
    /\ goneRes \subseteq 1..(nextRes - 1) /\ goneWorkers \subseteq 1..(nextWorker - 1)

(* Rule 6: a job that has ended, however it ended, holds nothing live:   *)
(* no lease, no creating or ready resource, no worker but in release.    *)
EndedHoldsNothing ==
    \A j \in Jobs : Ended(Cur, j) =>
        /\ \A l \in DOMAIN leases : leases[l].job # j
        /\ \A r \in ResOf(Cur, j) : ~IsLive(Cur, r)
        /\ \A k \in DOMAIN workers : workers[k].job = j => workers[k].st = "releasing"

(* Rule 8: a job waiting for its dependencies asks for and holds nothing, *)
(* and one that has begun had every dependency end as it asked and its    *)
(* inputs whole.                                                          *)
BlockedHoldsNothing ==
    /\ \A j \in Jobs : phase[j] = "blocked" =>
        /\ \A g \in Groups(j) : grp[j][g] = "idle"
        /\ wwant[j] = "idle" /\ ResOf(Cur, j) = {}
    /\ \A j \in Jobs : phase[j] \in {"acquiring", "running"} => Clear(Cur, j)

-----------------------------------------------------------------------------
(* Liveness.                                                               *)

(* Every submitted job eventually ends, and in the end leaves the books   *)
(* (ending is for good, so <> of "all ended" is "each eventually ends").  *)
JobsEnd    == <>(\A j \in Jobs : Ended(Cur, j))
JobsRetire == <>(\A j \in Jobs : phase[j] = "retired")

(* Every released resource is eventually destroyed or held, and every    *)
(* released worker destroyed.  A resource leaves "releasing" only by     *)
(* being destroyed or held, and ids are never reused, so "from some point *)
(* on nothing is releasing" says exactly that, for every id at once.     *)
NoneReleasing == /\ \A r \in DOMAIN res : res[r].st # "releasing"
                 /\ \A k \in DOMAIN workers : workers[k].st # "releasing"
ReleasedGone == <>[]NoneReleasing

(* No starvation under FIFO: a job that begins acquiring eventually gets *)
(* every group it asks for and then its worker, and runs, unless a fault  *)
(* ends it first (while acquiring, nothing else can end it).              *)
FaultEnds(j) == outcome[j] \in {"cancelled", "timed_out", "failed_resource",
                                "failed_worker_lost"}
NoStarvation ==
    \A j \in Jobs : (phase[j] = "acquiring") ~> (phase[j] = "running" \/ FaultEnds(j))
=============================================================================
