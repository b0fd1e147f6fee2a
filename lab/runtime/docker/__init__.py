"""runtime/docker"""
