"""After W&B's docs, "Log media and objects" (docs.wandb.ai/guides/track/log/media: images,
lists of images, tables with image columns, histograms, audio, video, HTML, plotly and
matplotlib), the kinds wandb's functional test t5_log_media logs: one run logging each as the
docs write it. Shrunk: tiny arrays.
    python log_media.py"""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import plotly.express as px  # noqa: E402
import wandb  # noqa: E402

run = wandb.init(project="media")
pixels = np.random.randint(0, 255, (16, 16, 3), dtype=np.uint8)
wandb.log({"image": wandb.Image(pixels, caption="random")})
wandb.log({"examples": [wandb.Image(pixels, caption=f"ex {i}") for i in range(3)]})
table = wandb.Table(columns=["id", "image", "guess"])
for i in range(2):
    table.add_data(i, wandb.Image(pixels), "cat" if i else "dog")
wandb.log({"predictions": table})
wandb.log({"gradients": wandb.Histogram(np.random.randn(100))})
wandb.log({"audio": wandb.Audio(np.sin(np.linspace(0, 300, 8000)), sample_rate=8000, caption="sine")})
wandb.log(
    {"video": wandb.Video(np.random.randint(0, 255, (5, 3, 16, 16), dtype=np.uint8), fps=4, format="gif")}
)
wandb.log({"custom_html": wandb.Html("<h1>hello</h1>")})
wandb.log({"plotly": px.scatter(x=[0, 1, 2], y=[2, 1, 0])})
fig, ax = plt.subplots()
ax.plot([1, 2, 3], [3, 1, 2])
wandb.log({"chart": plt})
run.finish()
