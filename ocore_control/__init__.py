# The host agent (ocore_control.agent) runs without Odoo: the Odoo parts load only when Odoo imports
# this package as an addon.
if __name__.startswith("odoo.addons."):
    from . import controllers, models, wizard
