"""Shrunk from wandb/examples' scikit-learn classification example (examples/scikit/
scikit-classification): fit a classifier on a toy dataset, then `wandb.sklearn.plot_classifier`
plus the individual `plot_*` calls it documents, and `wandb.plot.*` charts. Shrunk: iris,
a 5-tree forest.
    python scikit_classifier.py"""

import wandb
from sklearn.datasets import load_iris
from sklearn.ensemble import RandomForestClassifier
from sklearn.model_selection import train_test_split

X, y = load_iris(return_X_y=True)
labels = ["setosa", "versicolor", "virginica"]
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.3, random_state=0)
model = RandomForestClassifier(n_estimators=5, random_state=0).fit(X_train, y_train)
y_pred, y_probas = model.predict(X_test), model.predict_proba(X_test)

run = wandb.init(project="scikit", config={"n_estimators": 5})
wandb.sklearn.plot_classifier(
    model,
    X_train,
    X_test,
    y_train,
    y_test,
    y_pred,
    y_probas,
    labels,
    model_name="RandomForest",
    feature_names=["sl", "sw", "pl", "pw"],
)
wandb.sklearn.plot_learning_curve(model, X_train, y_train)
wandb.log({"cm": wandb.plot.confusion_matrix(probs=y_probas, y_true=y_test, class_names=labels)})
wandb.log({"roc": wandb.plot.roc_curve(y_test, y_probas, labels=labels)})
run.finish()
