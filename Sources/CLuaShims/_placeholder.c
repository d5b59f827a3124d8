/* placeholder, removed when the shims land */
