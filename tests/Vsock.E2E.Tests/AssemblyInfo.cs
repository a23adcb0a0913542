// Each QEMU guest keeps one of the machine's two cores busy under TCG; tests running side by side would
// turn timing checks (refusal well under 2 s) into coin flips.
[assembly: CollectionBehavior(DisableTestParallelization = true)]
