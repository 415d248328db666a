"""Hyperparameter search (KerasTuner) and k-fold cross-validation over leafnet's trainer."""
