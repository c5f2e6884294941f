"""Datasets by role: records/, input/ (training), writing/, formats/."""
