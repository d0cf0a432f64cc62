"""Allocation policies that imitate or approximate the oracle at serve time. Built in the learn-stage issue."""
