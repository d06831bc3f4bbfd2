"""Chat has no admin pages on purpose.

Staff read a conversation through the API or the websocket, and each read is
announced in it (a `staff.viewed` system message, see docs/chat.md); an admin
page would let staff read without the members knowing.
"""
