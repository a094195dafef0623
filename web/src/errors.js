/** The error types of the runtime, named as in Python (sentilite.shared.errors). */

/** Base class of every error sentilite raises on purpose. */
export class SentiliteError extends Error {
  constructor(message) {
    super(message);
    this.name = new.target.name;
  }
}

/** A configuration value is invalid. */
export class ConfigError extends SentiliteError {}

/** A tokenizer JSON (or a model file's embedded copy) is malformed or of an unknown version. */
export class TokenizerFileError extends SentiliteError {}

/** A model file cannot be used: missing, corrupt, inconsistent or hostile. */
export class ModelFileError extends SentiliteError {}
