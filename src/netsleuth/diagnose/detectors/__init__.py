"""diagnose/detectors"""
