"""Transactional messages: codes and confirmations on their own queue, ahead of campaign traffic."""
