"""An agent process for tests/test_sweeps.py: runs trials of a sweep whose function logs
`loss = x` for 3 steps; the trial with x == BLOCK writes DIR/started-<pid> and then waits
(the test kills this process there).
    python agent_proc.py ROOT SWEEP_ID DIR BLOCK"""

import os
import sys
import time

import runlake

root, sweep_id, out, block = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])


def train():
    run = runlake.init(root=root)
    x = run.config["x"]
    for _ in range(3):
        run.log({"loss": float(x)})
    if x == block:
        run.flush()
        with open(os.path.join(out, f"started-{os.getpid()}"), "w") as fh:
            fh.write(run.id)
        time.sleep(600)
    run.finish()


runlake.agent(sweep_id, function=train, root=root)
