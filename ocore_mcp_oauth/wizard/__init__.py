from . import oauth_invite_show, oauth_secret_show
