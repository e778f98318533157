"""Model training: preprocessing, the classifier kinds behind one interface, the pyfunc wrapper.

Import the submodules directly (``relearn.training.classifier`` and so on); this package
imports nothing itself, so that importing it never pulls in torch or scikit-learn.
"""
