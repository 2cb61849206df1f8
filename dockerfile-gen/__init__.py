"""Chooses the closest base image for each app and writes its Dockerfile, bootstrap.yaml and Helm values."""
