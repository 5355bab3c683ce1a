"""Shrunk from cleanrl's ppo.py (github.com/vwxyzjn/cleanrl, cleanrl/ppo.py): the same wandb and
TensorBoard calls in the same order - argparse args, `wandb.init(..., sync_tensorboard=True,
config=vars(args), name=run_name, monitor_gym=True, save_code=True)`, a `SummaryWriter` with the
hyperparameters as text, then per update `add_scalar("charts/learning_rate" | "losses/..." |
"charts/SPS", value, global_step)`. Shrunk: a random stand-in for the gym environment and a
tiny policy, 3 updates of 16 steps, CPU only (gym is not a dependency).
    python cleanrl_ppo_tb.py --total-timesteps 48"""

import argparse
import time

import numpy as np
import torch
import wandb
from torch import nn
from torch.utils.tensorboard import SummaryWriter

parser = argparse.ArgumentParser()
parser.add_argument("--exp-name", default="ppo")
parser.add_argument("--seed", type=int, default=1)
parser.add_argument("--total-timesteps", type=int, default=48)
parser.add_argument("--learning-rate", type=float, default=2.5e-4)
parser.add_argument("--num-steps", type=int, default=16)
parser.add_argument("--wandb-project-name", default="cleanRL")
args = parser.parse_args()
run_name = f"CartPole-v1__{args.exp_name}__{args.seed}__{int(time.time())}"

wandb.init(
    project=args.wandb_project_name,
    sync_tensorboard=True,
    config=vars(args),
    name=run_name,
    monitor_gym=True,
    save_code=True,
)
writer = SummaryWriter(f"runs/{run_name}")
writer.add_text(
    "hyperparameters",
    "|param|value|\n|-|-|\n%s" % ("\n".join([f"|{key}|{value}|" for key, value in vars(args).items()])),  # noqa: UP031 - as cleanrl writes it
)
torch.manual_seed(args.seed)
policy = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 2))
optimizer = torch.optim.Adam(policy.parameters(), lr=args.learning_rate)
rng = np.random.default_rng(args.seed)
global_step = 0
start_time = time.time()
for update in range(1, args.total_timesteps // args.num_steps + 1):  # noqa: B007 - as cleanrl writes it
    obs = torch.tensor(rng.normal(size=(args.num_steps, 4)), dtype=torch.float32)
    for _ in range(args.num_steps):
        global_step += 1
    logits = policy(obs)
    loss = -torch.distributions.Categorical(logits=logits).entropy().mean()
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    writer.add_scalar("charts/episodic_return", float(rng.integers(10, 50)), global_step)
    writer.add_scalar("charts/learning_rate", optimizer.param_groups[0]["lr"], global_step)
    writer.add_scalar("losses/value_loss", float(loss.item() ** 2), global_step)
    writer.add_scalar("losses/entropy", -loss.item(), global_step)
    writer.add_scalar("charts/SPS", int(global_step / (time.time() - start_time + 1e-9)), global_step)
writer.close()
