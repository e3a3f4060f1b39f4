---------------------------- MODULE AquiferTrace ----------------------------
(***************************************************************************)
(* Trace validation.  AquiferTraceData (written by trace.py) holds traces *)
(* of the Rust core: per trace, the scope (the constants of Aquifer) and  *)
(* a sequence of steps, each the state of Aquifer after one action of the *)
(* spec, folded from the core's events, with what kind of action it must  *)
(* be.  TLC explores all traces at once: tr picks one, pos is how far it  *)
(* has been followed.  From each state the only successors are those      *)
(* where some action of the spec leads to exactly the trace's next state. *)
(* A trace that TLC cannot follow to its end is rejected; trace.py reads  *)
(* how far each got from the "TRACE" lines printed on every step taken.   *)
(***************************************************************************)
EXTENDS Naturals, Sequences, TLC, AquiferTraceData

VARIABLES st, budget, goneRes, goneWorkers, tr, pos

Spec(k) == INSTANCE Aquifer WITH
    Need <- Traces[k].need, Deps <- Traces[k].deps, Target <- Traces[k].target,
    OnFailure <- Traces[k].onFailure, OnEither <- Traces[k].onEither,
    Awaits <- Traces[k].awaits,
    TypeOrder <- Traces[k].typeOrder, Pools <- Traces[k].pools, FCap <- Traces[k].fcap,
    Policy <- Traces[k].policy, Grant <- Traces[k].grant, SharedPool <- Traces[k].shared,
    GroupFailuresMax <- Traces[k].gfm, DestroyFailuresMax <- Traces[k].dfm,
    Faults <- TraceFaults

Same == UNCHANGED <<st, budget, goneRes, goneWorkers>>

(* What the step s of trace k may be.                                     *)
Matches(k, s) ==
    \/ s.kind = "act"        /\ Spec(k)!ProtocolNext
    \* a grant: the well's request, with the free slots it reported
    \/ s.kind = "grant"      /\ Spec(k)!RequestLease(s.well, s.free)
    \/ s.kind = "grantroom"  /\ Spec(k)!RequestLease(s.well, Spec(k)!Room(s.well))
    \* a request that got nothing: nothing may have fitted
    \/ s.kind = "nogrant"    /\ Spec(k)!NoLease(s.well, s.free) /\ Same
    \/ s.kind = "worker"     /\ Spec(k)!RequestWorker(s.factory, s.free)
    \/ s.kind = "workerroom" /\ Spec(k)!RequestWorker(s.factory, Spec(k)!FRoom(s.factory))
    \/ s.kind = "noworker"   /\ Spec(k)!NoWorker(s.factory, s.free) /\ Same
    \* a lease ended early: by the cause the core gave
    \/ s.kind = "expire"     /\ Spec(k)!Expire(s.lease)
    \/ s.kind = "failed"     /\ Spec(k)!CreateFailed(s.res, s.retryable)
    \* a renewal changes nothing the spec keeps (time is abstract)
    \/ s.kind = "renew"      /\ s.lease \in DOMAIN st.leases
                             /\ s.well \in {0, st.leases[s.lease].well} /\ Same
    \/ s.kind = "hold"       /\ Spec(k)!SetHold(s.held)
    \/ s.kind = "stutter"    /\ Same

Init ==
    \E k \in 1..Len(Traces) : tr = k /\ pos = 0 /\ Spec(k)!Init

Next ==
    \E k \in 1..Len(Traces) :
        /\ tr = k /\ pos < Len(Traces[k].steps)
        /\ Matches(k, Traces[k].steps[pos + 1])
        /\ st' = Traces[k].steps[pos + 1].post
        /\ tr' = tr /\ pos' = pos + 1
        /\ PrintT(<<"TRACE", k, pos + 1>>)

(* The core's invariants hold in every state of every trace.              *)
Safe ==
    \E k \in 1..Len(Traces) :
        /\ tr = k
        /\ Spec(k)!TypeOK /\ Spec(k)!PoolsWithinCapacity
        /\ Spec(k)!RunningHoldsEverything /\ Spec(k)!NothingLeavesUnconfirmed
        /\ Spec(k)!EndedHoldsNothing /\ Spec(k)!BlockedHoldsNothing
        /\ Traces[k].policy = "ordered" /\ Traces[k].grant = "together" => Spec(k)!RankOrder
=============================================================================
