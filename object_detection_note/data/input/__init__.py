"""The input pipeline that training and evaluation read."""
