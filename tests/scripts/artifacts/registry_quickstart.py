"""W&B's registry quickstart (docs.wandb.ai/guides/registry, "hello_collection.py") followed by
the checkpoint loop W&B's artifact docs show: log a file as a model artifact
(`run.log_artifact(artifact_or_path=..., name=..., type=...)`), link it into a registry
collection (`run.link_artifact(artifact=..., target_path="wandb-registry-model/...")`), then
per epoch an Artifact with metadata, `add_file`, `log_artifact`, and `link_artifact(...,
aliases=["best"])` when it improves; a second run uses the best model. The same calls; shrunk:
a text "model", 3 epochs.
    python registry_quickstart.py"""

import random

import wandb

run = wandb.init(project="registry_quickstart")
with open("my_model.txt", "w") as f:
    f.write("Model: " + str(random.random()))
logged_artifact = run.log_artifact(artifact_or_path="./my_model.txt", name="gemma-finetuned", type="model")
COLLECTION_NAME = "first-collection"
REGISTRY_NAME = "model"
run.link_artifact(artifact=logged_artifact, target_path=f"wandb-registry-{REGISTRY_NAME}/{COLLECTION_NAME}")

best_acc = 0.0
for epoch in range(3):
    acc = [0.5, 0.8, 0.7][epoch]
    wandb.log({"epoch": epoch, "acc": acc})
    with open("ckpt.pt", "w") as f:
        f.write(f"weights {epoch}")
    artifact = wandb.Artifact(
        name=f"model_epoch{epoch:03d}",
        type="model",
        metadata=dict(acc=acc, epoch=epoch),  # noqa: C408
    )
    artifact.add_file("ckpt.pt")
    run.log_artifact(artifact)
    if acc > best_acc:
        best_acc = acc
        run.link_artifact(artifact, aliases=["best"], target_path="model")
run.finish()

with wandb.init(project="registry_quickstart", job_type="eval") as consumer:
    best = consumer.use_artifact("model:best")
    path = best.download()
    print(best.metadata["epoch"], open(f"{path}/ckpt.pt").read())
